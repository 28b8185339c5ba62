/* store/sqlite.c: the "sqlite" store backend, the embedded default.
 *
 * Owns: one SQLite connection per open store, its schema (versioned with
 * PRAGMA user_version and migrated at open), the default client whitelist
 * seeded into a new database, the row loaders, and the ops table.
 * Not here: the books, apply() and apply_segment(s) (sqlite_apply.c), the
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
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_admin.h"
#include "store/sqlite_apply.h"
#include "util/log.h"

/* The flusher retries a busy batch with back-off; apply must not sit on a
 * lock held by an admin's sqlite3 shell. Opening may wait longer: it runs
 * once, before anything is served. */
#define SQLITE_BUSY_MS 100
#define SQLITE_OPEN_BUSY_MS 5000

#define SQLITE_SCHEMA_VERSION 4

/* db stays the first member: sqlite_admin.c reads it through the context. */
struct sqlite_store {
    sqlite3 *db;
    struct sqlite_apply ap; /* the books' statements (sqlite_apply.c) */
};

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
    " user_id INTEGER NOT NULL,"
    " torrent_id INTEGER NOT NULL,"
    " uploaded INTEGER NOT NULL DEFAULT 0,"
    " downloaded INTEGER NOT NULL DEFAULT 0,"
    " raw_uploaded INTEGER NOT NULL DEFAULT 0,"
    " raw_downloaded INTEGER NOT NULL DEFAULT 0,"
    " seed_time INTEGER NOT NULL DEFAULT 0,"
    " leech_time INTEGER NOT NULL DEFAULT 0,"
    " announces INTEGER NOT NULL DEFAULT 0,"
    " first_announce INTEGER NOT NULL,"
    " last_announce INTEGER NOT NULL,"
    " completed_at INTEGER,"
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
};

/* Seeded once, when the database is created: widely used clients' BEP 20
 * Azureus-style peer_id prefixes ("-XX" then a version). docs/STORES.md lists
 * the same; operators edit the table afterwards and a reopen never re-adds. */
static const struct {
    const char *prefix;
    const char *name;
} sqlite_default_whitelist[] = {
    {"-qB", "qBittorrent"},
    {"-TR", "Transmission"},
    {"-DE", "Deluge"},
    {"-LT", "libtorrent (Rasterbar)"},
    {"-lt", "rTorrent (libTorrent, rakshasa)"},
    {"-BI", "BiglyBT"},
    {"-AZ", "Vuze (Azureus)"},
    {"-UT", "\xc2\xb5Torrent"},
    {"-UM", "\xc2\xb5Torrent Mac"},
    {"-BT", "BitTorrent"},
    {"-BC", "BitComet"},
    {"-KT", "KTorrent"},
    {"-FL", "Folx"},
    {"-FD", "Free Download Manager"},
    {"-WW", "WebTorrent"},
    {"-WD", "WebTorrent Desktop"},
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

static int sqlite_fail(sqlite3 *db, int rc, struct mk_errbuf *eb, const char *what)
{
    return mk_fail(eb, sqlite_err(rc), "sqlite: %s: %s", what,
                   db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* Runs one statement returning at most one integer; *out untouched if none. */
static int sqlite_get_int(sqlite3 *db, const char *sql, int64_t *out, struct mk_errbuf *eb)
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

static int sqlite_exec(sqlite3 *db, const char *sql, struct mk_errbuf *eb)
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
    size_t n = sizeof(sqlite_default_whitelist) / sizeof(sqlite_default_whitelist[0]);
    int err = 0;
    for (size_t i = 0; i < n && err == 0; i++) {
        sqlite3_bind_text(st, 1, sqlite_default_whitelist[i].prefix, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, sqlite_default_whitelist[i].name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) {
            err = sqlite_fail(db, rc, eb, "seed whitelist");
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return err;
}

/* Brings the schema to SQLITE_SCHEMA_VERSION in one transaction, so a crash
 * or a second daemon starting at the same time never sees half a schema. */
static int sqlite_migrate(sqlite3 *db, struct mk_errbuf *eb)
{
    int64_t version = 0;
    int err = sqlite_get_int(db, "PRAGMA user_version", &version, eb);
    if (err < 0 || version == SQLITE_SCHEMA_VERSION) {
        return err;
    }
    if (version < 0 || version > SQLITE_SCHEMA_VERSION) {
        return mk_fail(eb, MK_ENOTSUP,
                       "sqlite: schema version %" PRId64 " is not one this mika knows (0..%d)",
                       version, SQLITE_SCHEMA_VERSION);
    }
    err = sqlite_exec(db, "BEGIN IMMEDIATE", eb);
    if (err < 0) {
        return err;
    }
    /* Re-read under the write lock: another process may have migrated. */
    err = sqlite_get_int(db, "PRAGMA user_version", &version, eb);
    for (int64_t v = version; err == 0 && v < SQLITE_SCHEMA_VERSION; v++) {
        err = sqlite_exec(db, sqlite_migrations[v], eb);
        if (err == 0 && v == 0) {
            err = sqlite_seed_whitelist(db, eb);
        }
        if (err == 0) {
            mk_log(MK_LOG_INFO, "store.sqlite", "schema migrated to version %" PRId64, v + 1);
        }
    }
    if (err == 0 && version < SQLITE_SCHEMA_VERSION) {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SQLITE_SCHEMA_VERSION);
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
        err = sqlite_migrate(s->db, eb);
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

/* ---- loaders ------------------------------------------------------------ */

/* The caller's callback for one load: exactly one of the fn fields is set. */
struct sqlite_sink {
    store_user_fn user;
    store_torrent_fn torrent;
    store_whitelist_fn whitelist;
    store_snatch_fn snatch;
    store_peer_fn peer;
    store_history_fn history;
    store_suspicious_fn suspicious;
    void *arg;
};

/* Converts one result row and hands it to the sink: 0, or the sink's error. */
typedef int (*sqlite_row_fn)(sqlite3_stmt *st, const struct sqlite_sink *sink);

static int sqlite_load(struct sqlite_store *s, const char *sql, const char *table,
                       sqlite_row_fn row, const struct sqlite_sink *sink, struct mk_errbuf *eb)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return sqlite_fail(s->db, rc, eb, table);
    }
    int err = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        err = row(st, sink);
        if (err < 0) {
            mk_fail(eb, err, "sqlite: loading %s stopped by the caller", table);
            break;
        }
    }
    if (err == 0 && rc != SQLITE_DONE) {
        err = sqlite_fail(s->db, rc, eb, table);
    }
    sqlite3_finalize(st);
    return err;
}

/* An id that fits the tracker's uint32 ids (UINT32_MAX is reserved by u32set). */
static bool sqlite_id_ok(sqlite3_int64 id)
{
    return id >= 0 && id < (sqlite3_int64)UINT32_MAX;
}

/* Copies at most cap - 1 bytes and NUL-terminates, cutting at a UTF-8
 * character boundary; true if it had to cut. */
static bool sqlite_copy_text(char *out, size_t cap, const unsigned char *p, size_t len)
{
    bool cut = len >= cap;
    if (cut) {
        len = cap - 1;
        while (len > 0 && (p[len] & 0xc0) == 0x80) {
            len--;
        }
    }
    if (len > 0) {
        memcpy(out, p, len);
    }
    out[len] = '\0';
    return cut;
}

/* A multiplier column: per-mille, clamped to 0..ACCT_MULT_MAX (100x). */
static uint32_t sqlite_mult(sqlite3_stmt *st, int col)
{
    sqlite3_int64 v = sqlite3_column_int64(st, col);
    return v < 0 ? 0 : v > 100000 ? 100000 : (uint32_t)v;
}

static int sqlite_user_row(sqlite3_stmt *st, const struct sqlite_sink *sink)
{
    sqlite3_int64 id = sqlite3_column_int64(st, 0);
    const unsigned char *pk = sqlite3_column_blob(st, 1);
    size_t len = (size_t)sqlite3_column_bytes(st, 1);
    if (!sqlite_id_ok(id)) {
        mk_log(MK_LOG_WARN, "store.sqlite", "users row %lld skipped: id out of range", id);
        return 0;
    }
    if (len == 0 || len > MK_PASSKEY_MAX) {
        mk_log(MK_LOG_WARN, "store.sqlite", "users row %lld skipped: passkey is %zu bytes (1..%d)",
               id, len, MK_PASSKEY_MAX);
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = pk[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
            mk_log(MK_LOG_WARN, "store.sqlite",
                   "users row %lld skipped: passkey has a character outside [A-Za-z0-9]", id);
            return 0;
        }
    }
    struct user_row row = {
        .id = (uint32_t)id,
        .enabled = sqlite3_column_int64(st, 2) != 0,
        .can_download = sqlite3_column_int64(st, 3) != 0,
        .has_mults = true,
        .class_up = sqlite_mult(st, 4),
        .class_down = sqlite_mult(st, 5),
        .personal_up = sqlite_mult(st, 6),
        .personal_down = sqlite_mult(st, 7),
    };
    memcpy(row.passkey, pk, len);
    row.passkey[len] = '\0';
    return sink->user(&row, sink->arg);
}

static int sqlite_torrent_row(sqlite3_stmt *st, const struct sqlite_sink *sink)
{
    sqlite3_int64 id = sqlite3_column_int64(st, 0);
    const void *hash = sqlite3_column_blob(st, 1);
    int hlen = sqlite3_column_bytes(st, 1);
    if (!sqlite_id_ok(id)) {
        mk_log(MK_LOG_WARN, "store.sqlite", "torrents row %lld skipped: id out of range", id);
        return 0;
    }
    if (hlen != 20) {
        mk_log(MK_LOG_WARN, "store.sqlite",
               "torrents row %lld skipped: info_hash is %d bytes, not 20", id, hlen);
        return 0;
    }
    struct torrent_row row = {
        .id = (uint32_t)id,
        .enabled = sqlite3_column_int64(st, 2) != 0,
        .deleted = sqlite3_column_int64(st, 3) != 0,
    };
    memcpy(row.info_hash, hash, 20);
    const unsigned char *reason = sqlite3_column_text(st, 4);
    size_t rlen = (size_t)sqlite3_column_bytes(st, 4);
    if (reason && sqlite_copy_text(row.reason, sizeof(row.reason), reason, rlen)) {
        mk_log(MK_LOG_WARN, "store.sqlite",
               "torrents row %lld: deleted_reason is %zu bytes, cut to %zu", id, rlen,
               strlen(row.reason));
    }
    sqlite3_int64 sn = sqlite3_column_int64(st, 5);
    row.snatches = sn < 0 ? 0 : sn > UINT32_MAX ? UINT32_MAX : (uint32_t)sn;
    row.has_mults = true;
    row.freeleech = sqlite3_column_int64(st, 6) != 0;
    row.up_mult = sqlite_mult(st, 7);
    row.down_mult = sqlite_mult(st, 8);
    sqlite3_int64 size = sqlite3_column_int64(st, 9);
    row.size = size > 0 ? (uint64_t)size : 0;
    return sink->torrent(&row, sink->arg);
}

static int sqlite_whitelist_row(sqlite3_stmt *st, const struct sqlite_sink *sink)
{
    sqlite3_int64 rowid = sqlite3_column_int64(st, 0);
    /* Read as bytes so a TEXT '-qB' and a BLOB X'2D7142' both work. */
    const void *prefix = sqlite3_column_blob(st, 1);
    int plen = sqlite3_column_bytes(st, 1);
    if (plen <= 0 || plen > MK_PREFIX_MAX) {
        mk_log(MK_LOG_WARN, "store.sqlite",
               "whitelist row %lld skipped: prefix is %d bytes (1..%d)", rowid, plen,
               MK_PREFIX_MAX);
        return 0;
    }
    struct whitelist_row row = {.prefix_len = (uint8_t)plen};
    memcpy(row.prefix, prefix, (size_t)plen);
    const unsigned char *name = sqlite3_column_text(st, 2);
    size_t nlen = (size_t)sqlite3_column_bytes(st, 2);
    if (name && sqlite_copy_text(row.name, sizeof(row.name), name, nlen)) {
        mk_log(MK_LOG_WARN, "store.sqlite", "whitelist row %lld: name is %zu bytes, cut to %zu",
               rowid, nlen, strlen(row.name));
    }
    return sink->whitelist(&row, sink->arg);
}

static int sqlite_snatch_row(sqlite3_stmt *st, const struct sqlite_sink *sink)
{
    sqlite3_int64 uid = sqlite3_column_int64(st, 0);
    sqlite3_int64 tid = sqlite3_column_int64(st, 1);
    if (!sqlite_id_ok(uid) || !sqlite_id_ok(tid)) {
        mk_log(MK_LOG_WARN, "store.sqlite",
               "snatches row (user_id %lld, torrent_id %lld) skipped: id out of range", uid, tid);
        return 0;
    }
    struct snatch_row row = {
        .user_id = (uint32_t)uid,
        .torrent_id = (uint32_t)tid,
        .at = sqlite3_column_int64(st, 2),
    };
    /* No torrent row here (a split config keeps torrents elsewhere): all
     * zero, and the caller names the torrent by id. */
    if (sqlite3_column_bytes(st, 3) == 20) {
        memcpy(row.info_hash, sqlite3_column_blob(st, 3), 20);
    }
    return sink->snatch(&row, sink->arg);
}

static int sqlite_peer_row(sqlite3_stmt *st, const struct sqlite_sink *sink)
{
    struct peer_row row;
    memset(&row, 0, sizeof(row));
    sqlite3_int64 tid = sqlite3_column_int64(st, 0);
    sqlite3_int64 uid = sqlite3_column_int64(st, 1);
    int family = sqlite3_column_int(st, 3);
    int iplen = sqlite3_column_bytes(st, 4);
    sqlite3_int64 port = sqlite3_column_int64(st, 5);
    if (!sqlite_id_ok(uid) || !sqlite_id_ok(tid) || sqlite3_column_bytes(st, 2) != 20 ||
        !((family == 4 && iplen == 4) || (family == 6 && iplen == 16)) || port < 1 ||
        port > 65535) {
        mk_log(MK_LOG_WARN, "store.sqlite",
               "peers row (torrent_id %lld, user_id %lld) skipped: malformed", tid, uid);
        return 0;
    }
    row.torrent_id = (uint32_t)tid;
    row.user_id = (uint32_t)uid;
    memcpy(row.peer_id, sqlite3_column_blob(st, 2), 20);
    row.family = (uint8_t)family;
    memcpy(row.ip, sqlite3_column_blob(st, 4), (size_t)iplen);
    row.port = (uint16_t)port;
    row.uploaded = (uint64_t)sqlite3_column_int64(st, 6);
    row.downloaded = (uint64_t)sqlite3_column_int64(st, 7);
    row.seeder = sqlite3_column_int(st, 8) != 0;
    row.partial = sqlite3_column_int(st, 9) != 0;
    row.last_seen = sqlite3_column_int64(st, 10);
    if (sqlite3_column_bytes(st, 11) == 20) {
        memcpy(row.info_hash, sqlite3_column_blob(st, 11), 20);
    }
    return sink->peer(&row, sink->arg);
}

static int sqlite_load_peers(void *ctx, int64_t seen_since, store_peer_fn fn, void *arg,
                             struct mk_errbuf *eb)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT p.torrent_id, p.user_id, p.peer_id, p.family, p.ip, p.port, p.uploaded,"
             " p.downloaded, p.seeder, p.partial, p.last_seen, t.info_hash"
             " FROM peers p LEFT JOIN torrents t ON t.id = p.torrent_id"
             " WHERE p.last_seen >= %" PRId64 " AND p.gone = 0",
             seen_since);
    return sqlite_load(ctx, sql, "peers", sqlite_peer_row,
                       &(struct sqlite_sink){.peer = fn, .arg = arg}, eb);
}

static int sqlite_history_row(sqlite3_stmt *st, const struct sqlite_sink *sink)
{
    struct history_row row;
    memset(&row, 0, sizeof(row));
    row.torrent_id = (uint32_t)sqlite3_column_int64(st, 0);
    if (sqlite3_column_bytes(st, 1) == 20) {
        memcpy(row.info_hash, sqlite3_column_blob(st, 1), 20);
    }
    uint64_t *u64[] = {&row.size, &row.uploaded, &row.downloaded, &row.raw_uploaded,
                       &row.raw_downloaded, &row.seed_time, &row.leech_time, &row.announces};
    for (int i = 0; i < 8; i++) {
        sqlite3_int64 v = sqlite3_column_int64(st, 2 + i);
        *u64[i] = v > 0 ? (uint64_t)v : 0;
    }
    row.first_announce = sqlite3_column_int64(st, 10);
    row.last_announce = sqlite3_column_int64(st, 11);
    row.completed_at = sqlite3_column_int64(st, 12);
    return sink->history(&row, sink->arg);
}

static int sqlite_suspicious_row(sqlite3_stmt *st, const struct sqlite_sink *sink)
{
    struct suspicious_row row;
    memset(&row, 0, sizeof(row));
    if (sqlite3_column_bytes(st, 0) == 20) {
        memcpy(row.info_hash, sqlite3_column_blob(st, 0), 20);
    }
    row.at = sqlite3_column_int64(st, 1);
    sqlite3_int64 up = sqlite3_column_int64(st, 2);
    row.uploaded = up > 0 ? (uint64_t)up : 0;
    const unsigned char *why = sqlite3_column_text(st, 3);
    snprintf(row.reason, sizeof(row.reason), "%s", why ? (const char *)why : "");
    row.torrent_id = (uint32_t)sqlite3_column_int64(st, 4);
    return sink->suspicious(&row, sink->arg);
}

/* One page of a user's rows in `table`: *total counts them all, then the
 * page's query streams through the sink. */
static int sqlite_user_page(struct sqlite_store *s, const char *table, uint32_t user_id,
                            const char *page_sql, sqlite_row_fn row,
                            const struct sqlite_sink *sink, uint64_t *total,
                            struct mk_errbuf *eb)
{
    int64_t count = 0;
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE user_id = %u", table, user_id);
    int err = sqlite_get_int(s->db, sql, &count, eb);
    if (err < 0) {
        return err;
    }
    *total = (uint64_t)count;
    return sqlite_load(s, page_sql, table, row, sink, eb);
}

static int sqlite_user_history(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
                               store_history_fn fn, void *arg, uint64_t *total,
                               struct mk_errbuf *eb)
{
    char sql[640];
    snprintf(sql, sizeof(sql),
             "SELECT h.torrent_id, t.info_hash, coalesce(t.size, 0), h.uploaded, h.downloaded,"
             " h.raw_uploaded, h.raw_downloaded, h.seed_time, h.leech_time, h.announces,"
             " h.first_announce, h.last_announce, coalesce(h.completed_at, 0)"
             " FROM user_torrents h LEFT JOIN torrents t ON t.id = h.torrent_id"
             " WHERE h.user_id = %u ORDER BY h.last_announce DESC, h.torrent_id"
             " LIMIT %u OFFSET %" PRIu64,
             user_id, limit, offset);
    return sqlite_user_page(ctx, "user_torrents", user_id, sql, sqlite_history_row,
                            &(struct sqlite_sink){.history = fn, .arg = arg}, total, eb);
}

static int sqlite_user_suspicious(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
                                  store_suspicious_fn fn, void *arg, uint64_t *total,
                                  struct mk_errbuf *eb)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT t.info_hash, x.at, x.uploaded, x.reason, x.torrent_id FROM suspicious x"
             " LEFT JOIN torrents t ON t.id = x.torrent_id WHERE x.user_id = %u"
             " ORDER BY x.at DESC, x.id DESC LIMIT %u OFFSET %" PRIu64,
             user_id, limit, offset);
    return sqlite_user_page(ctx, "suspicious", user_id, sql, sqlite_suspicious_row,
                            &(struct sqlite_sink){.suspicious = fn, .arg = arg}, total, eb);
}

static int sqlite_load_tokens(void *ctx, uint32_t user_id, int64_t now, store_token_fn fn,
                              void *arg, struct mk_errbuf *eb)
{
    struct sqlite_store *s = ctx;
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT k.user_id, t.info_hash, k.upload_multiplier, k.download_multiplier,"
             " k.expires_at, k.torrent_id FROM tokens k LEFT JOIN torrents t ON t.id = k.torrent_id"
             " WHERE (k.expires_at = 0 OR k.expires_at > %" PRId64 ")%s"
             " ORDER BY k.user_id, k.torrent_id",
             now, user_id ? " AND k.user_id = ?1" : "");
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return sqlite_fail(s->db, rc, eb, "tokens");
    }
    if (user_id) {
        sqlite3_bind_int64(st, 1, user_id);
    }
    int err = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct token_row row = {
            .user_id = (uint32_t)sqlite3_column_int64(st, 0),
            .up_mult = sqlite_mult(st, 2),
            .down_mult = sqlite_mult(st, 3),
            .expires = sqlite3_column_int64(st, 4),
            .torrent_id = (uint32_t)sqlite3_column_int64(st, 5),
        };
        if (sqlite3_column_bytes(st, 1) == 20) {
            memcpy(row.info_hash, sqlite3_column_blob(st, 1), 20);
        }
        err = fn(&row, arg);
        if (err < 0) {
            break;
        }
    }
    if (err == 0 && rc != SQLITE_DONE) {
        err = sqlite_fail(s->db, rc, eb, "tokens");
    }
    sqlite3_finalize(st);
    return err;
}

static int sqlite_token_put(void *ctx, const struct token_row *row, struct mk_errbuf *eb)
{
    struct sqlite_store *s = ctx;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db,
                                "INSERT INTO tokens (user_id, torrent_id, upload_multiplier,"
                                " download_multiplier, expires_at)"
                                " SELECT ?1, t.id, ?3, ?4, ?5 FROM users u, (SELECT ?6 AS id"
                                " WHERE ?6 > 0 UNION ALL SELECT id FROM torrents"
                                " WHERE ?6 = 0 AND info_hash = ?2) t WHERE u.id = ?1"
                                " ON CONFLICT (user_id, torrent_id) DO UPDATE SET"
                                " upload_multiplier = ?3, download_multiplier = ?4,"
                                " expires_at = ?5",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return sqlite_fail(s->db, rc, eb, "tokens");
    }
    sqlite3_bind_int64(st, 1, row->user_id);
    sqlite3_bind_blob(st, 2, row->info_hash, 20, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, row->up_mult);
    sqlite3_bind_int64(st, 4, row->down_mult);
    sqlite3_bind_int64(st, 5, row->expires);
    sqlite3_bind_int64(st, 6, row->torrent_id);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        return sqlite_fail(s->db, rc, eb, "tokens");
    }
    return sqlite3_changes(s->db) == 1 ? 0 : mk_fail(eb, MK_ENOTFOUND, "user or torrent");
}

static int sqlite_token_delete(void *ctx, const struct token_row *key, struct mk_errbuf *eb)
{
    struct sqlite_store *s = ctx;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db,
                                "DELETE FROM tokens WHERE user_id = ?1 AND torrent_id ="
                                " (CASE WHEN ?3 > 0 THEN ?3 ELSE"
                                " (SELECT id FROM torrents WHERE info_hash = ?2) END)",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return sqlite_fail(s->db, rc, eb, "tokens");
    }
    sqlite3_bind_int64(st, 1, key->user_id);
    sqlite3_bind_blob(st, 2, key->info_hash, 20, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, key->torrent_id);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        return sqlite_fail(s->db, rc, eb, "tokens");
    }
    return sqlite3_changes(s->db) == 1 ? 0 : mk_fail(eb, MK_ENOTFOUND, "token");
}

static int sqlite_prune_peers(void *ctx, int64_t seen_before, struct mk_errbuf *eb)
{
    struct sqlite_store *s = ctx;
    char sql[128];
    snprintf(sql, sizeof(sql), "DELETE FROM peers WHERE last_seen < %" PRId64, seen_before);
    return sqlite_exec(s->db, sql, eb);
}

static int sqlite_prune_applied(void *ctx, int64_t applied_before, uint16_t node,
                                struct mk_errbuf *eb)
{
    struct sqlite_store *s = ctx;
    char sql[160];
    /* boot holds the unsigned id's bits: >> is arithmetic, hence the mask. */
    snprintf(sql, sizeof(sql),
             "DELETE FROM journal_applied WHERE applied_at < %" PRId64 "%s", applied_before,
             node ? " AND ((boot >> 48) & 65535) = " : "");
    if (node) {
        snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), "%u", (unsigned)node);
    }
    return sqlite_exec(s->db, sql, eb);
}

static int sqlite_load_users(void *ctx, store_user_fn fn, void *arg, struct mk_errbuf *eb)
{
    return sqlite_load(ctx,
                       /* The hot path needs the effective right: own AND class. */
                       "SELECT u.id, u.passkey, u.enabled,"
                       " u.can_download AND COALESCE(c.may_download, 1),"
                       " COALESCE(c.upload_multiplier, 1000), COALESCE(c.download_multiplier, 1000),"
                       " u.upload_multiplier, u.download_multiplier"
                       " FROM users u LEFT JOIN classes c ON c.id = u.class_id ORDER BY u.id",
                       "users", sqlite_user_row, &(struct sqlite_sink){.user = fn, .arg = arg},
                       eb);
}

static int sqlite_load_torrents(void *ctx, store_torrent_fn fn, void *arg, struct mk_errbuf *eb)
{
    return sqlite_load(ctx,
                       "SELECT id, info_hash, enabled, deleted, deleted_reason, snatches,"
                       " freeleech, upload_multiplier, download_multiplier, size"
                       " FROM torrents ORDER BY id",
                       "torrents", sqlite_torrent_row,
                       &(struct sqlite_sink){.torrent = fn, .arg = arg}, eb);
}

static int sqlite_load_whitelist(void *ctx, store_whitelist_fn fn, void *arg,
                                 struct mk_errbuf *eb)
{
    return sqlite_load(ctx, "SELECT rowid, prefix, name FROM whitelist ORDER BY rowid",
                       "whitelist", sqlite_whitelist_row,
                       &(struct sqlite_sink){.whitelist = fn, .arg = arg}, eb);
}

static int sqlite_load_snatches(void *ctx, store_snatch_fn fn, void *arg, struct mk_errbuf *eb)
{
    /* Snatches of torrents that are gone come back with no info_hash, and the
     * loader (which finds torrents by info_hash or id) drops them. */
    return sqlite_load(ctx,
                       "SELECT s.user_id, s.torrent_id, s.at, t.info_hash"
                       " FROM snatches s LEFT JOIN torrents t ON t.id = s.torrent_id"
                       " ORDER BY s.torrent_id, s.user_id",
                       "snatches", sqlite_snatch_row,
                       &(struct sqlite_sink){.snatch = fn, .arg = arg}, eb);
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
