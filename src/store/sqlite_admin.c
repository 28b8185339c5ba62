/* store/sqlite_admin.c: the sqlite backend's admin-API methods (MK_STORE_V2).
 *
 * Owns: reading and writing single users, torrents, whitelist prefixes,
 * classes and settings for the admin API, each write one transaction.
 * Sections, in order: column helpers, users, torrents, whitelist, classes,
 * settings. One concern (single records for the admin API, as pg_admin.c,
 * mysql_admin.c and redis_admin.c), so one file.
 * Not here: opening, the schema and its migrations, the error and exec
 * helpers (sqlite.c), the loaders (sqlite_load.c) and apply()
 * (sqlite_apply.c); sqlite.c lists these functions in its ops table.
 * Invariants: ctx is a struct sqlite_store (sqlite_int.h); unique-constraint
 * violations become MK_EEXIST with the column's name as the whole message,
 * a missing row MK_ENOTFOUND naming it, a busy database MK_EUNAVAIL.
 */
#include "store/sqlite_admin.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "store/sqlite_int.h"
#include "util/text.h"

/* A failed prepare or step: a unique violation names its column. */
static int admin_fail(sqlite3 *db, int rc, struct mk_errbuf *eb, const char *what)
{
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        /* "UNIQUE constraint failed: users.passkey" -> "passkey" */
        const char *msg = sqlite3_errmsg(db);
        const char *dot = strrchr(msg, '.');
        return mk_fail(eb, MK_EEXIST, "%s", dot ? dot + 1 : msg);
    }
    return sqlite_fail(db, rc, eb, what);
}

static int admin_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, struct mk_errbuf *eb)
{
    int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? 0 : admin_fail(db, rc, eb, "prepare");
}

/* Steps a statement that returns no row, then finalizes it. */
static int admin_run(sqlite3 *db, sqlite3_stmt *st, struct mk_errbuf *eb, const char *what)
{
    int rc = sqlite3_step(st);
    int err = rc == SQLITE_DONE ? 0 : admin_fail(db, rc, eb, what);
    sqlite3_finalize(st);
    return err;
}

static int admin_begin(sqlite3 *db, struct mk_errbuf *eb)
{
    return sqlite_exec(db, "BEGIN IMMEDIATE", eb);
}

/* Commits when err is 0, else rolls back; returns err or the commit's error. */
static int admin_end(sqlite3 *db, int err, struct mk_errbuf *eb)
{
    if (err == 0) {
        err = sqlite_exec(db, "COMMIT", eb);
    }
    if (err != 0) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    return err;
}

/* Copies a text column into out (cap bytes with the NUL), cut at a UTF-8
 * character boundary. */
static void admin_text(sqlite3_stmt *st, int col, char *out, size_t cap)
{
    const unsigned char *p = sqlite3_column_text(st, col);
    size_t len = p ? (size_t)sqlite3_column_bytes(st, col) : 0;
    (void)mk_copy_text(out, cap, p, len);
}

static uint32_t admin_u32(sqlite3_stmt *st, int col, uint32_t max)
{
    sqlite3_int64 v = sqlite3_column_int64(st, col);
    return v < 0 ? 0 : (uint64_t)v > max ? max : (uint32_t)v;
}

static uint64_t admin_u64(sqlite3_stmt *st, int col)
{
    sqlite3_int64 v = sqlite3_column_int64(st, col);
    return v < 0 ? 0 : (uint64_t)v;
}

static void admin_bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
    if (*s) {
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_null(st, i);
    }
}

/* ---- users ------------------------------------------------------------- */

#define ADMIN_USER_COLS                                                                            \
    "SELECT u.id, u.passkey, u.enabled, u.can_download, COALESCE(c.may_download, 1),"             \
    " COALESCE(u.name, ''), u.class_id, u.upload_multiplier, u.download_multiplier,"              \
    " u.uploaded, u.downloaded, u.created_at,"                                                     \
    " (SELECT COUNT(*) FROM snatches s WHERE s.user_id = u.id),"                                   \
    " u.raw_uploaded, u.raw_downloaded, u.seed_time, u.leech_time, u.bonus, u.announces"           \
    " FROM users u LEFT JOIN classes c ON c.id = u.class_id"

static void admin_user_rec(sqlite3_stmt *st, struct user_rec *r)
{
    memset(r, 0, sizeof(*r));
    r->row.id = admin_u32(st, 0, UINT32_MAX - 1);
    admin_text(st, 1, r->row.passkey, sizeof(r->row.passkey));
    r->row.enabled = sqlite3_column_int64(st, 2) != 0;
    r->may_download = sqlite3_column_int64(st, 3) != 0;
    r->row.can_download = r->may_download && sqlite3_column_int64(st, 4) != 0;
    admin_text(st, 5, r->name, sizeof(r->name));
    r->class_id = admin_u32(st, 6, UINT32_MAX - 1);
    r->up_mult = admin_u32(st, 7, MK_MULT_MAX);
    r->down_mult = admin_u32(st, 8, MK_MULT_MAX);
    r->uploaded = admin_u64(st, 9);
    r->downloaded = admin_u64(st, 10);
    r->created_at = sqlite3_column_int64(st, 11);
    r->snatches = admin_u32(st, 12, UINT32_MAX);
    r->raw_uploaded = admin_u64(st, 13);
    r->raw_downloaded = admin_u64(st, 14);
    r->seed_time = admin_u64(st, 15);
    r->leech_time = admin_u64(st, 16);
    r->bonus = admin_u64(st, 17);
    r->announces = admin_u64(st, 18);
}

/* Runs a one-row user query whose ?1 is already bound. */
static int admin_user_one(sqlite3 *db, sqlite3_stmt *st, struct user_rec *out,
                          struct mk_errbuf *eb)
{
    int rc = sqlite3_step(st);
    int err = 0;
    if (rc == SQLITE_ROW) {
        admin_user_rec(st, out);
    } else if (rc == SQLITE_DONE) {
        err = mk_fail(eb, MK_ENOTFOUND, "user");
    } else {
        err = admin_fail(db, rc, eb, "user");
    }
    sqlite3_finalize(st);
    return err;
}

int sqlite_admin_ping(void *ctx, struct mk_errbuf *eb)
{
    sqlite3 *db = ((struct sqlite_store *)ctx)->db;
    sqlite3_stmt *st;
    int err = admin_prepare(db, "SELECT COUNT(*) FROM classes", &st, eb);
    if (err != 0) {
        return err;
    }
    int rc = sqlite3_step(st);
    err = rc == SQLITE_ROW ? 0 : admin_fail(db, rc, eb, "ping");
    sqlite3_finalize(st);
    return err;
}

int sqlite_admin_user_get(void *ctx, uint32_t id, struct user_rec *out, struct mk_errbuf *eb)
{
    sqlite3 *db = ((struct sqlite_store *)ctx)->db;
    sqlite3_stmt *st;
    int err = admin_prepare(db, ADMIN_USER_COLS " WHERE u.id = ?1", &st, eb);
    if (err != 0) {
        return err;
    }
    sqlite3_bind_int64(st, 1, id);
    return admin_user_one(db, st, out, eb);
}

int sqlite_admin_user_get_by_passkey(void *ctx, const char *passkey, struct user_rec *out,
                                     struct mk_errbuf *eb)
{
    sqlite3 *db = ((struct sqlite_store *)ctx)->db;
    sqlite3_stmt *st;
    int err = admin_prepare(db, ADMIN_USER_COLS " WHERE u.passkey = ?1", &st, eb);
    if (err != 0) {
        return err;
    }
    sqlite3_bind_text(st, 1, passkey, -1, SQLITE_TRANSIENT);
    return admin_user_one(db, st, out, eb);
}

#define ADMIN_USER_WHERE                                                                           \
    " WHERE (?1 < 0 OR u.enabled = ?1) AND (?2 < 0 OR u.can_download = ?2)"                       \
    " AND (?3 = 0 OR u.class_id = ?4)"                                                             \
    " AND (?5 = '' OR substr(u.name, 1, length(?5)) = ?5)"

static void admin_bind_filter(sqlite3_stmt *st, const struct user_filter *f)
{
    sqlite3_bind_int(st, 1, f->enabled < 0 ? -1 : f->enabled != 0);
    sqlite3_bind_int(st, 2, f->may_download < 0 ? -1 : f->may_download != 0);
    sqlite3_bind_int(st, 3, f->has_class);
    sqlite3_bind_int64(st, 4, f->class_id);
    sqlite3_bind_text(st, 5, f->name_prefix, -1, SQLITE_TRANSIENT);
}

int sqlite_admin_user_list(void *ctx, const struct user_filter *f, store_user_rec_fn fn,
                           void *arg, uint64_t *total, struct mk_errbuf *eb)
{
    sqlite3 *db = ((struct sqlite_store *)ctx)->db;
    sqlite3_stmt *st;
    /* One read transaction, so the count and the page agree. */
    int err = sqlite_exec(db, "BEGIN", eb);
    if (err != 0) {
        return err;
    }
    err = admin_prepare(db, "SELECT COUNT(*) FROM users u" ADMIN_USER_WHERE, &st, eb);
    if (err == 0) {
        admin_bind_filter(st, f);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *total = admin_u64(st, 0);
        } else {
            err = admin_fail(db, rc, eb, "count users");
        }
        sqlite3_finalize(st);
    }
    if (err == 0) {
        err = admin_prepare(db,
                            ADMIN_USER_COLS ADMIN_USER_WHERE " ORDER BY u.id LIMIT ?6 OFFSET ?7",
                            &st, eb);
    }
    if (err == 0) {
        admin_bind_filter(st, f);
        sqlite3_bind_int64(st, 6, f->limit);
        sqlite3_bind_int64(st, 7, f->offset > INT64_MAX ? INT64_MAX : (sqlite3_int64)f->offset);
        int rc = SQLITE_DONE;
        while (err == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            struct user_rec r;
            admin_user_rec(st, &r);
            err = fn(&r, arg);
        }
        if (err == 0 && rc != SQLITE_DONE) {
            err = admin_fail(db, rc, eb, "list users");
        }
        sqlite3_finalize(st);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    return err;
}

static int admin_class_exists(sqlite3 *db, uint32_t id, struct mk_errbuf *eb)
{
    sqlite3_stmt *st;
    int err = admin_prepare(db, "SELECT 1 FROM classes WHERE id = ?1", &st, eb);
    if (err != 0) {
        return err;
    }
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        err = mk_fail(eb, MK_ENOTFOUND, "class_id");
    } else if (rc != SQLITE_ROW) {
        err = admin_fail(db, rc, eb, "class");
    }
    sqlite3_finalize(st);
    return err;
}

/* A user's settable columns into ?2..?8 (passkey, name, enabled,
 * can_download, class_id, upload and download multipliers): the insert's
 * and the update's order alike. */
static void admin_bind_user(sqlite3_stmt *st, const struct user_rec *rec)
{
    sqlite3_bind_text(st, 2, rec->row.passkey, -1, SQLITE_TRANSIENT);
    admin_bind_text_or_null(st, 3, rec->name);
    sqlite3_bind_int(st, 4, rec->row.enabled);
    sqlite3_bind_int(st, 5, rec->may_download);
    sqlite3_bind_int64(st, 6, rec->class_id);
    sqlite3_bind_int64(st, 7, rec->up_mult);
    sqlite3_bind_int64(st, 8, rec->down_mult);
}

int sqlite_admin_user_insert(void *ctx, struct user_rec *rec, bool has_id, struct mk_errbuf *eb)
{
    sqlite3 *db = ((struct sqlite_store *)ctx)->db;
    int err = admin_begin(db, eb);
    if (err != 0) {
        return err;
    }
    err = admin_class_exists(db, rec->class_id, eb);
    sqlite3_stmt *st = NULL;
    if (err == 0) {
        err = admin_prepare(db,
                            "INSERT INTO users (id, passkey, name, enabled, can_download, class_id,"
                            " upload_multiplier, download_multiplier)"
                            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                            &st, eb);
    }
    if (err == 0) {
        if (has_id) {
            sqlite3_bind_int64(st, 1, rec->row.id);
        } else {
            sqlite3_bind_null(st, 1);
        }
        admin_bind_user(st, rec);
        err = admin_run(db, st, eb, "insert user");
    }
    sqlite3_int64 id = sqlite3_last_insert_rowid(db);
    if (err == 0 && (id < 0 || id >= (sqlite3_int64)UINT32_MAX)) {
        err = mk_fail(eb, MK_ELIMIT, "id: no user id left below %u", UINT32_MAX);
    }
    err = admin_end(db, err, eb);
    if (err == 0) {
        err = sqlite_admin_user_get(ctx, (uint32_t)id, rec, eb);
    }
    return err;
}

int sqlite_admin_user_update(void *ctx, const struct user_rec *rec, struct mk_errbuf *eb)
{
    sqlite3 *db = ((struct sqlite_store *)ctx)->db;
    int err = admin_begin(db, eb);
    if (err != 0) {
        return err;
    }
    err = admin_class_exists(db, rec->class_id, eb);
    sqlite3_stmt *st = NULL;
    if (err == 0) {
        err = admin_prepare(db,
                            "UPDATE users SET passkey = ?2, name = ?3, enabled = ?4,"
                            " can_download = ?5, class_id = ?6, upload_multiplier = ?7,"
                            " download_multiplier = ?8 WHERE id = ?1",
                            &st, eb);
    }
    if (err == 0) {
        sqlite3_bind_int64(st, 1, rec->row.id);
        admin_bind_user(st, rec);
        err = admin_run(db, st, eb, "update user");
    }
    if (err == 0 && sqlite3_changes(db) == 0) {
        err = mk_fail(eb, MK_ENOTFOUND, "user");
    }
    return admin_end(db, err, eb);
}

int sqlite_admin_user_delete(void *ctx, uint32_t id, struct mk_errbuf *eb)
{
    sqlite3 *db = ((struct sqlite_store *)ctx)->db;
    int err = admin_begin(db, eb);
    if (err != 0) {
        return err;
    }
    sqlite3_stmt *st;
    err = admin_prepare(db, "DELETE FROM users WHERE id = ?1", &st, eb);
    if (err == 0) {
        sqlite3_bind_int64(st, 1, id);
        err = admin_run(db, st, eb, "delete user");
    }
    if (err == 0 && sqlite3_changes(db) == 0) {
        err = mk_fail(eb, MK_ENOTFOUND, "user");
    }
    if (err == 0) {
        err = admin_prepare(db, "DELETE FROM snatches WHERE user_id = ?1", &st, eb);
    }
    if (err == 0) {
        sqlite3_bind_int64(st, 1, id);
        err = admin_run(db, st, eb, "delete snatches");
    }
    return admin_end(db, err, eb);
}

/* ---- torrents ------------------------------------------------------------ */

/* One torrent by info_hash (by_id false) or by id: the same columns. */
static int admin_torrent_find(void *ctx, bool by_id, uint32_t id, const uint8_t info_hash[20],
                              struct torrent_rec *out, struct mk_errbuf *eb)
{
    sqlite3 *db = ((struct sqlite_store *)ctx)->db;
    sqlite3_stmt *st;
    int err = admin_prepare(db,
                            by_id ? "SELECT id, enabled, deleted, deleted_reason, snatches,"
                                    " COALESCE(name, ''), size, freeleech, upload_multiplier,"
                                    " download_multiplier, created_at, transferred, info_hash"
                                    " FROM torrents WHERE id = ?1"
                                  : "SELECT id, enabled, deleted, deleted_reason, snatches,"
                                    " COALESCE(name, ''), size, freeleech, upload_multiplier,"
                                    " download_multiplier, created_at, transferred, info_hash"
                                    " FROM torrents WHERE info_hash = ?1",
                            &st, eb);
    if (err != 0) {
        return err;
    }
    if (by_id) {
        sqlite3_bind_int64(st, 1, id);
    } else {
        sqlite3_bind_blob(st, 1, info_hash, 20, SQLITE_TRANSIENT);
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 12) == 20) {
        memset(out, 0, sizeof(*out));
        out->row.id = admin_u32(st, 0, UINT32_MAX - 1);
        memcpy(out->row.info_hash, sqlite3_column_blob(st, 12), 20);
        out->row.enabled = sqlite3_column_int64(st, 1) != 0;
        out->row.deleted = sqlite3_column_int64(st, 2) != 0;
        admin_text(st, 3, out->row.reason, sizeof(out->row.reason));
        out->row.snatches = admin_u32(st, 4, UINT32_MAX);
        admin_text(st, 5, out->name, sizeof(out->name));
        out->has_size = sqlite3_column_type(st, 6) != SQLITE_NULL;
        out->size = admin_u64(st, 6);
        out->freeleech = sqlite3_column_int64(st, 7) != 0;
        out->up_mult = admin_u32(st, 8, MK_MULT_MAX);
        out->down_mult = admin_u32(st, 9, MK_MULT_MAX);
        out->created_at = sqlite3_column_int64(st, 10);
        out->transferred = admin_u64(st, 11);
    } else if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
        err = mk_fail(eb, MK_ENOTFOUND, "torrent");
    } else {
        err = admin_fail(db, rc, eb, "torrent");
    }
    sqlite3_finalize(st);
    return err;
}

int sqlite_admin_torrent_get(void *ctx, const uint8_t info_hash[20], struct torrent_rec *out,
                             struct mk_errbuf *eb)
{
    return admin_torrent_find(ctx, false, 0, info_hash, out, eb);
}

int sqlite_admin_torrent_get_by_id(void *ctx, uint32_t id, struct torrent_rec *out,
                                   struct mk_errbuf *eb)
{
    return admin_torrent_find(ctx, true, id, NULL, out, eb);
}

/* Binds ?1 info_hash, ?2 enabled, ?3 deleted, ?4 reason, ?5 name, ?6 size,
 * ?7 freeleech, ?8 and ?9 multipliers. */
static void admin_bind_torrent(sqlite3_stmt *st, const struct torrent_rec *rec)
{
    sqlite3_bind_blob(st, 1, rec->row.info_hash, 20, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, rec->row.enabled);
    sqlite3_bind_int(st, 3, rec->row.deleted);
    sqlite3_bind_text(st, 4, rec->row.reason, -1, SQLITE_TRANSIENT);
    admin_bind_text_or_null(st, 5, rec->name);
    if (rec->has_size && rec->size <= INT64_MAX) {
        sqlite3_bind_int64(st, 6, (sqlite3_int64)rec->size);
    } else {
        sqlite3_bind_null(st, 6);
    }
    sqlite3_bind_int(st, 7, rec->freeleech);
    sqlite3_bind_int64(st, 8, rec->up_mult);
    sqlite3_bind_int64(st, 9, rec->down_mult);
}

int sqlite_admin_torrent_insert(void *ctx, struct torrent_rec *rec, struct mk_errbuf *eb)
{
    sqlite3 *db = ((struct sqlite_store *)ctx)->db;
    sqlite3_stmt *st;
    int err = admin_prepare(db,
                            "INSERT INTO torrents (info_hash, enabled, deleted, deleted_reason,"
                            " name, size, freeleech, upload_multiplier, download_multiplier)"
                            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                            &st, eb);
    if (err != 0) {
        return err;
    }
    admin_bind_torrent(st, rec);
    err = admin_run(db, st, eb, "insert torrent");
    if (err == 0) {
        uint8_t ih[20];
        memcpy(ih, rec->row.info_hash, 20);
        err = sqlite_admin_torrent_get(ctx, ih, rec, eb);
    }
    return err;
}

int sqlite_admin_torrent_update(void *ctx, const struct torrent_rec *rec, struct mk_errbuf *eb)
{
    sqlite3 *db = ((struct sqlite_store *)ctx)->db;
    sqlite3_stmt *st;
    int err = admin_prepare(db,
                            "UPDATE torrents SET enabled = ?2, deleted = ?3, deleted_reason = ?4,"
                            " name = ?5, size = ?6, freeleech = ?7, upload_multiplier = ?8,"
                            " download_multiplier = ?9 WHERE info_hash = ?1",
                            &st, eb);
    if (err != 0) {
        return err;
    }
    admin_bind_torrent(st, rec);
    err = admin_run(db, st, eb, "update torrent");
    if (err == 0 && sqlite3_changes(db) == 0) {
        err = mk_fail(eb, MK_ENOTFOUND, "torrent");
    }
    return err;
}

/* ---- whitelist --------------------------------------------------------- */

/* Prefixes that are valid UTF-8 without NUL are stored as TEXT, like the
 * seeded ones and what an admin types in the shell; others as BLOB. Both
 * are compared as bytes (CAST AS BLOB), so '-qB' and X'2D7142' are one. */
static void admin_bind_prefix(sqlite3_stmt *st, int i, const uint8_t *p, size_t len, bool as_text)
{
    if (as_text) {
        sqlite3_bind_text(st, i, (const char *)p, (int)len, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_blob(st, i, p, (int)len, SQLITE_TRANSIENT);
    }
}

static bool admin_is_utf8_text(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = p[i];
        size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                                                 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (c == 0 || n == 0 || i + n > len || (n == 2 && c < 0xc2)) {
            return false;
        }
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return false;
            }
        }
        i += n;
    }
    return true;
}

/* Finds the prefix; 0 with *out filled (when out), MK_ENOTFOUND, or an error. */
static int admin_whitelist_find(sqlite3 *db, const uint8_t *prefix, size_t len,
                                struct whitelist_row *out, struct mk_errbuf *eb)
{
    sqlite3_stmt *st;
    int err = admin_prepare(db, "SELECT name FROM whitelist WHERE CAST(prefix AS BLOB) = ?1",
                            &st, eb);
    if (err != 0) {
        return err;
    }
    admin_bind_prefix(st, 1, prefix, len, false);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (out) {
            memset(out, 0, sizeof(*out));
            memcpy(out->prefix, prefix, len);
            out->prefix_len = (uint8_t)len;
            admin_text(st, 0, out->name, sizeof(out->name));
        }
    } else if (rc == SQLITE_DONE) {
        err = mk_fail(eb, MK_ENOTFOUND, "prefix");
    } else {
        err = admin_fail(db, rc, eb, "whitelist");
    }
    sqlite3_finalize(st);
    return err;
}

int sqlite_admin_whitelist_insert(void *ctx, const struct whitelist_row *row,
                                  struct mk_errbuf *eb)
{
    sqlite3 *db = ((struct sqlite_store *)ctx)->db;
    if (row->prefix_len == 0 || row->prefix_len > MK_PREFIX_MAX) {
        return mk_fail(eb, MK_EINVAL, "prefix: %u bytes (1..%d)", row->prefix_len, MK_PREFIX_MAX);
    }
    int err = admin_begin(db, eb);
    if (err != 0) {
        return err;
    }
    err = admin_whitelist_find(db, row->prefix, row->prefix_len, NULL, eb);
    if (err == 0) {
        err = mk_fail(eb, MK_EEXIST, "prefix");
    } else if (err == MK_ENOTFOUND) {
        sqlite3_stmt *st;
        err = admin_prepare(db, "INSERT INTO whitelist (prefix, name) VALUES (?1, ?2)", &st, eb);
        if (err == 0) {
            admin_bind_prefix(st, 1, row->prefix, row->prefix_len,
                              admin_is_utf8_text(row->prefix, row->prefix_len));
            sqlite3_bind_text(st, 2, row->name, -1, SQLITE_TRANSIENT);
            err = admin_run(db, st, eb, "insert whitelist");
        }
    }
    return admin_end(db, err, eb);
}

int sqlite_admin_whitelist_delete(void *ctx, const uint8_t *prefix, size_t len,
                                  struct whitelist_row *out, struct mk_errbuf *eb)
{
    sqlite3 *db = ((struct sqlite_store *)ctx)->db;
    if (len == 0 || len > MK_PREFIX_MAX) {
        return mk_fail(eb, MK_ENOTFOUND, "prefix");
    }
    int err = admin_begin(db, eb);
    if (err != 0) {
        return err;
    }
    err = admin_whitelist_find(db, prefix, len, out, eb);
    if (err == 0) {
        sqlite3_stmt *st;
        err = admin_prepare(db, "DELETE FROM whitelist WHERE CAST(prefix AS BLOB) = ?1", &st, eb);
        if (err == 0) {
            admin_bind_prefix(st, 1, prefix, len, false);
            err = admin_run(db, st, eb, "delete whitelist");
        }
    }
    return admin_end(db, err, eb);
}

/* ---- classes ------------------------------------------------------------- */

#define ADMIN_CLASS_COLS                                                                           \
    "SELECT c.id, c.name, c.upload_multiplier, c.download_multiplier, c.may_download,"            \
    " (SELECT COUNT(*) FROM users u WHERE u.class_id = c.id) FROM classes c"

static void admin_class_row(sqlite3_stmt *st, struct class_row *r)
{
    memset(r, 0, sizeof(*r));
    r->id = admin_u32(st, 0, UINT32_MAX - 1);
    admin_text(st, 1, r->name, sizeof(r->name));
    r->up_mult = admin_u32(st, 2, MK_MULT_MAX);
    r->down_mult = admin_u32(st, 3, MK_MULT_MAX);
    r->may_download = sqlite3_column_int64(st, 4) != 0;
    r->users = admin_u32(st, 5, UINT32_MAX);
}

int sqlite_admin_class_list(void *ctx, store_class_fn fn, void *arg, struct mk_errbuf *eb)
{
    sqlite3 *db = ((struct sqlite_store *)ctx)->db;
    sqlite3_stmt *st;
    int err = admin_prepare(db, ADMIN_CLASS_COLS " ORDER BY c.id", &st, eb);
    if (err != 0) {
        return err;
    }
    int rc = SQLITE_DONE;
    while (err == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct class_row r;
        admin_class_row(st, &r);
        err = fn(&r, arg);
    }
    if (err == 0 && rc != SQLITE_DONE) {
        err = admin_fail(db, rc, eb, "list classes");
    }
    sqlite3_finalize(st);
    return err;
}

int sqlite_admin_class_get(void *ctx, uint32_t id, struct class_row *out, struct mk_errbuf *eb)
{
    sqlite3 *db = ((struct sqlite_store *)ctx)->db;
    sqlite3_stmt *st;
    int err = admin_prepare(db, ADMIN_CLASS_COLS " WHERE c.id = ?1", &st, eb);
    if (err != 0) {
        return err;
    }
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        admin_class_row(st, out);
    } else if (rc == SQLITE_DONE) {
        err = mk_fail(eb, MK_ENOTFOUND, "class");
    } else {
        err = admin_fail(db, rc, eb, "class");
    }
    sqlite3_finalize(st);
    return err;
}

int sqlite_admin_class_insert(void *ctx, struct class_row *row, bool has_id,
                              struct mk_errbuf *eb)
{
    sqlite3 *db = ((struct sqlite_store *)ctx)->db;
    /* A transaction, so that an id past the tracker's is rolled back, not
     * left in the table behind the refusal. */
    int err = admin_begin(db, eb);
    if (err != 0) {
        return err;
    }
    sqlite3_stmt *st;
    err = admin_prepare(db,
                        "INSERT INTO classes (id, name, upload_multiplier,"
                        " download_multiplier, may_download) VALUES (?1, ?2, ?3, ?4, ?5)",
                        &st, eb);
    if (err == 0) {
        if (has_id) {
            sqlite3_bind_int64(st, 1, row->id);
        } else {
            sqlite3_bind_null(st, 1);
        }
        sqlite3_bind_text(st, 2, row->name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, row->up_mult);
        sqlite3_bind_int64(st, 4, row->down_mult);
        sqlite3_bind_int(st, 5, row->may_download);
        err = admin_run(db, st, eb, "insert class");
    }
    sqlite3_int64 id = sqlite3_last_insert_rowid(db);
    if (err == 0 && (id < 0 || id >= (sqlite3_int64)UINT32_MAX)) {
        err = mk_fail(eb, MK_ELIMIT, "id: no class id left below %u", UINT32_MAX);
    }
    err = admin_end(db, err, eb);
    return err == 0 ? sqlite_admin_class_get(ctx, (uint32_t)id, row, eb) : err;
}

int sqlite_admin_class_update(void *ctx, const struct class_row *row, struct mk_errbuf *eb)
{
    sqlite3 *db = ((struct sqlite_store *)ctx)->db;
    sqlite3_stmt *st;
    int err = admin_prepare(db,
                            "UPDATE classes SET name = ?2, upload_multiplier = ?3,"
                            " download_multiplier = ?4, may_download = ?5 WHERE id = ?1",
                            &st, eb);
    if (err != 0) {
        return err;
    }
    sqlite3_bind_int64(st, 1, row->id);
    sqlite3_bind_text(st, 2, row->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, row->up_mult);
    sqlite3_bind_int64(st, 4, row->down_mult);
    sqlite3_bind_int(st, 5, row->may_download);
    err = admin_run(db, st, eb, "update class");
    if (err == 0 && sqlite3_changes(db) == 0) {
        err = mk_fail(eb, MK_ENOTFOUND, "class");
    }
    return err;
}

int sqlite_admin_class_delete(void *ctx, uint32_t id, struct mk_errbuf *eb)
{
    sqlite3 *db = ((struct sqlite_store *)ctx)->db;
    if (id == MK_CLASS_DEFAULT) {
        return mk_fail(eb, MK_EINVAL, "the default class %d cannot be deleted", MK_CLASS_DEFAULT);
    }
    int err = admin_begin(db, eb);
    if (err != 0) {
        return err;
    }
    struct class_row row;
    err = sqlite_admin_class_get(ctx, id, &row, eb);
    if (err == 0 && row.users > 0) {
        err = mk_fail(eb, MK_EEXIST, "users");
    }
    sqlite3_stmt *st;
    if (err == 0) {
        err = admin_prepare(db, "DELETE FROM classes WHERE id = ?1", &st, eb);
    }
    if (err == 0) {
        sqlite3_bind_int64(st, 1, id);
        err = admin_run(db, st, eb, "delete class");
    }
    return admin_end(db, err, eb);
}

/* ---- settings -------------------------------------------------------------- */

int sqlite_admin_settings_load(void *ctx, store_setting_fn fn, void *arg, struct mk_errbuf *eb)
{
    sqlite3 *db = ((struct sqlite_store *)ctx)->db;
    sqlite3_stmt *st;
    int err = admin_prepare(db, "SELECT key, value FROM settings ORDER BY key", &st, eb);
    if (err != 0) {
        return err;
    }
    int rc = SQLITE_DONE;
    while (err == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct setting_row r;
        admin_text(st, 0, r.key, sizeof(r.key));
        admin_text(st, 1, r.value, sizeof(r.value));
        err = fn(&r, arg);
    }
    if (err == 0 && rc != SQLITE_DONE) {
        err = admin_fail(db, rc, eb, "settings");
    }
    sqlite3_finalize(st);
    return err;
}

int sqlite_admin_settings_put(void *ctx, const struct setting_row *rows, size_t n,
                              struct mk_errbuf *eb)
{
    sqlite3 *db = ((struct sqlite_store *)ctx)->db;
    int err = admin_begin(db, eb);
    if (err != 0) {
        return err;
    }
    for (size_t i = 0; i < n && err == 0; i++) {
        sqlite3_stmt *st;
        err = admin_prepare(db, "INSERT OR REPLACE INTO settings (key, value) VALUES (?1, ?2)",
                            &st, eb);
        if (err == 0) {
            sqlite3_bind_text(st, 1, rows[i].key, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 2, rows[i].value, -1, SQLITE_TRANSIENT);
            err = admin_run(db, st, eb, "put setting");
        }
    }
    return admin_end(db, err, eb);
}
