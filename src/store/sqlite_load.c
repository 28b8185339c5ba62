/* store/sqlite_load.c: the sqlite backend's streaming loaders, a user's
 * history and suspicious pages, freeleech tokens, and the prunes.
 *
 * Owns: the SELECTs that stream users, torrents, the whitelist, snatches,
 * peers and tokens to the caller's callbacks (rows that break the store.h
 * contract are skipped with a warning naming the table and row), the pages
 * of the admin API's history and suspicious lists, token writes, and the
 * DELETEs of expired peers and old applied segment ids.
 * Not here: the connection and the schema (sqlite.c), the books
 * (sqlite_apply.c), the admin API's other methods (sqlite_admin.c).
 */
#include "store/sqlite_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/text.h"

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
    if (reason && mk_copy_text(row.reason, sizeof(row.reason), reason, rlen)) {
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
    if (name && mk_copy_text(row.name, sizeof(row.name), name, nlen)) {
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

int sqlite_load_peers(void *ctx, int64_t seen_since, store_peer_fn fn, void *arg,
                      struct mk_errbuf *eb)
{
    /* peer_reports: each peer's newest report, in its user's history row
     * or in peers (sqlite.c's schema v5), even one that says it left. */
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT p.torrent_id, p.user_id, p.peer_id, p.family, p.ip, p.port, p.uploaded,"
             " p.downloaded, p.seeder, p.partial, p.last_seen, t.info_hash"
             " FROM peer_reports p LEFT JOIN torrents t ON t.id = p.torrent_id"
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

int sqlite_user_history(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
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

int sqlite_user_suspicious(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
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

int sqlite_load_tokens(void *ctx, uint32_t user_id, int64_t now, store_token_fn fn,
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

int sqlite_token_put(void *ctx, const struct token_row *row, struct mk_errbuf *eb)
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

int sqlite_token_delete(void *ctx, const struct token_row *key, struct mk_errbuf *eb)
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

int sqlite_prune_peers(void *ctx, int64_t seen_before, struct mk_errbuf *eb)
{
    struct sqlite_store *s = ctx;
    /* The peers kept in history rows too (sqlite_apply.c); their columns go
     * back to NULL, so a row that kept a peer is as small as one that never
     * did. This reads all of user_torrents, once a minute (the flusher's
     * FLUSHER_PRUNE_EVERY_S): 0.065 s of CPU for 390k rows, both tables. */
    char sql[640];
    snprintf(sql, sizeof(sql),
             "DELETE FROM peers WHERE last_seen < %" PRId64 ";"
             "UPDATE user_torrents SET peer_id = NULL, peer_family = NULL, peer_ip = NULL,"
             " peer_port = NULL, peer_uploaded = NULL, peer_downloaded = NULL,"
             " peer_seeder = NULL, peer_partial = NULL, peer_last_seen = NULL,"
             " peer_version = NULL, peer_gone = NULL"
             " WHERE peer_last_seen < %" PRId64,
             seen_before, seen_before);
    return sqlite_exec(s->db, sql, eb);
}

int sqlite_prune_applied(void *ctx, int64_t applied_before, uint16_t node,
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

int sqlite_load_users(void *ctx, store_user_fn fn, void *arg, struct mk_errbuf *eb)
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

int sqlite_load_torrents(void *ctx, store_torrent_fn fn, void *arg, struct mk_errbuf *eb)
{
    return sqlite_load(ctx,
                       "SELECT id, info_hash, enabled, deleted, deleted_reason, snatches,"
                       " freeleech, upload_multiplier, download_multiplier, size"
                       " FROM torrents ORDER BY id",
                       "torrents", sqlite_torrent_row,
                       &(struct sqlite_sink){.torrent = fn, .arg = arg}, eb);
}

int sqlite_load_whitelist(void *ctx, store_whitelist_fn fn, void *arg,
                          struct mk_errbuf *eb)
{
    return sqlite_load(ctx, "SELECT rowid, prefix, name FROM whitelist ORDER BY rowid",
                       "whitelist", sqlite_whitelist_row,
                       &(struct sqlite_sink){.whitelist = fn, .arg = arg}, eb);
}

int sqlite_load_snatches(void *ctx, store_snatch_fn fn, void *arg, struct mk_errbuf *eb)
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
