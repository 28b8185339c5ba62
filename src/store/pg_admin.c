/* store/pg_admin.c: the postgres backend's admin-API methods (MK_STORE_V2).
 *
 * Owns: reading and writing single users, torrents, whitelist prefixes,
 * classes and settings for the admin API, each write one transaction.
 * Not here: the connection, the schema, the loaders and apply() (pg.c,
 * which lists these functions in its ops table and implements the query
 * helpers declared in pg_admin.h).
 * Invariants: answers match the sqlite backend's (the conformance suite runs
 * both): a unique violation is MK_EEXIST with the column's name as the whole
 * message, a missing row MK_ENOTFOUND naming it, an unreachable or busy
 * server MK_EUNAVAIL. New ids are the larger of the identity sequence's
 * next value and max(id) + 1, and the sequence is moved past what mika
 * inserts, so rows a site inserts with or without an id never collide.
 */
#include "store/pg_admin.h"

#include <string.h>

/* ---- users ------------------------------------------------------------- */

#define ADMIN_USER_COLS                                                                            \
    "SELECT u.id, u.passkey, u.enabled, u.can_download, COALESCE(c.may_download, TRUE),"          \
    " COALESCE(u.name, ''), u.class_id, u.upload_multiplier, u.download_multiplier,"              \
    " u.uploaded, u.downloaded, u.created_at,"                                                     \
    " (SELECT count(*) FROM snatches s WHERE s.user_id = u.id),"                                   \
    " u.raw_uploaded, u.raw_downloaded, u.seed_time, u.leech_time, u.bonus, u.announces"          \
    " FROM users u LEFT JOIN classes c ON c.id = u.class_id"

static void admin_user_rec(const PGresult *r, int row, struct user_rec *u)
{
    memset(u, 0, sizeof(*u));
    u->row.id = pg_u32(r, row, 0, UINT32_MAX - 1);
    pg_text(r, row, 1, u->row.passkey, sizeof(u->row.passkey));
    u->row.enabled = pg_bool(r, row, 2);
    u->may_download = pg_bool(r, row, 3);
    u->row.can_download = u->may_download && pg_bool(r, row, 4);
    pg_text(r, row, 5, u->name, sizeof(u->name));
    u->class_id = pg_u32(r, row, 6, UINT32_MAX - 1);
    u->up_mult = pg_u32(r, row, 7, MK_MULT_MAX);
    u->down_mult = pg_u32(r, row, 8, MK_MULT_MAX);
    u->uploaded = pg_u64(r, row, 9);
    u->downloaded = pg_u64(r, row, 10);
    u->created_at = pg_int(r, row, 11);
    u->snatches = pg_u32(r, row, 12, UINT32_MAX);
    u->raw_uploaded = pg_u64(r, row, 13);
    u->raw_downloaded = pg_u64(r, row, 14);
    u->seed_time = pg_u64(r, row, 15);
    u->leech_time = pg_u64(r, row, 16);
    u->bonus = pg_u64(r, row, 17);
    u->announces = pg_u64(r, row, 18);
}

/* Runs a one-row user query: 0 with *out, MK_ENOTFOUND "user", or an error. */
static int admin_user_one(struct pg_store *s, const char *sql, const struct pg_params *p,
                          struct user_rec *out, struct mk_errbuf *eb)
{
    PGresult *r;
    int err = pg_run(s, sql, p, &r, eb);
    if (err != 0) {
        return err;
    }
    if (PQntuples(r) == 1) {
        admin_user_rec(r, 0, out);
    } else {
        err = mk_fail(eb, MK_ENOTFOUND, "user");
    }
    PQclear(r);
    return err;
}

int pg_admin_ping(void *ctx, struct mk_errbuf *eb)
{
    PGresult *r;
    int err = pg_run(ctx, "SELECT count(*) FROM classes", NULL, &r, eb);
    if (err == 0) {
        PQclear(r);
    }
    return err;
}

int pg_admin_user_get(void *ctx, uint32_t id, struct user_rec *out, struct mk_errbuf *eb)
{
    struct pg_params p = {0};
    pg_param_int(&p, id);
    return admin_user_one(ctx, ADMIN_USER_COLS " WHERE u.id = $1", &p, out, eb);
}

int pg_admin_user_get_by_passkey(void *ctx, const char *passkey, struct user_rec *out,
                                 struct mk_errbuf *eb)
{
    struct pg_params p = {0};
    pg_param_text(&p, passkey);
    return admin_user_one(ctx, ADMIN_USER_COLS " WHERE u.passkey = $1", &p, out, eb);
}

/* $1 enabled (-1 any), $2 the user's own download flag (-1 any), $3 whether
 * $4 the class applies, $5 a case-sensitive name prefix ('' any). */
#define ADMIN_USER_WHERE                                                                           \
    " WHERE ($1::int < 0 OR u.enabled = ($1::int = 1))"                                            \
    " AND ($2::int < 0 OR u.can_download = ($2::int = 1))"                                         \
    " AND (NOT $3::boolean OR u.class_id = $4::bigint)"                                            \
    " AND ($5::text = '' OR starts_with(u.name, $5::text))"

static void admin_filter_params(struct pg_params *p, const struct user_filter *f)
{
    pg_param_int(p, f->enabled < 0 ? -1 : f->enabled != 0);
    pg_param_int(p, f->may_download < 0 ? -1 : f->may_download != 0);
    pg_param_bool(p, f->has_class);
    pg_param_int(p, f->class_id);
    pg_param_text(p, f->name_prefix);
}

struct admin_rec_sink {
    store_user_rec_fn fn;
    void *arg;
};

static int admin_user_list_row(const PGresult *r, void *arg)
{
    const struct admin_rec_sink *sink = arg;
    struct user_rec u;
    admin_user_rec(r, 0, &u);
    return sink->fn(&u, sink->arg);
}

int pg_admin_user_list(void *ctx, const struct user_filter *f, store_user_rec_fn fn, void *arg,
                       uint64_t *total, struct mk_errbuf *eb)
{
    /* One snapshot, so the count and the page agree. */
    int err = pg_begin(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", eb);
    if (err != 0) {
        return err;
    }
    struct pg_params p = {0};
    admin_filter_params(&p, f);
    PGresult *r;
    err = pg_run(ctx, "SELECT count(*) FROM users u" ADMIN_USER_WHERE, &p, &r, eb);
    if (err == 0) {
        *total = pg_u64(r, 0, 0);
        PQclear(r);
        pg_param_int(&p, f->limit);
        pg_param_int(&p, f->offset > INT64_MAX ? INT64_MAX : (int64_t)f->offset);
        err = pg_stream(ctx, ADMIN_USER_COLS ADMIN_USER_WHERE " ORDER BY u.id LIMIT $6 OFFSET $7",
                        &p, "users", admin_user_list_row,
                        &(struct admin_rec_sink){.fn = fn, .arg = arg}, eb);
    }
    return pg_end(ctx, err, eb);
}

static int admin_class_exists(struct pg_store *s, uint32_t id, struct mk_errbuf *eb)
{
    struct pg_params p = {0};
    pg_param_int(&p, id);
    PGresult *r;
    int err = pg_run(s, "SELECT 1 FROM classes WHERE id = $1", &p, &r, eb);
    if (err == 0) {
        if (PQntuples(r) == 0) {
            err = mk_fail(eb, MK_ENOTFOUND, "class_id");
        }
        PQclear(r);
    }
    return err;
}

/* Runs sql_with_id when the caller gave an id, else sql_pick; *id gets the
 * row's id. sql_bump then moves the table's sequence to max(id), so a
 * site's own inserts that rely on the default get a free id too. */
static int admin_insert_id(struct pg_store *s, const char *sql_with_id, const char *sql_pick,
                           const char *sql_bump, const struct pg_params *p, int64_t *id,
                           struct mk_errbuf *eb)
{
    PGresult *r;
    int err = pg_run(s, sql_with_id ? sql_with_id : sql_pick, p, &r, eb);
    if (err != 0) {
        return err;
    }
    *id = pg_int(r, 0, 0);
    PQclear(r);
    if (*id < 0 || *id >= (int64_t)UINT32_MAX) {
        return mk_fail(eb, MK_ELIMIT, "id: no id left below %u", UINT32_MAX);
    }
    PGresult *b;
    err = pg_run(s, sql_bump, NULL, &b, eb);
    if (err == 0) {
        PQclear(b);
    }
    return err;
}

/* A user's settable columns, next in p: passkey, name, enabled,
 * can_download, class_id, upload and download multipliers (the insert's
 * $1..$7, the update's $2..$8). */
static void admin_param_user(struct pg_params *p, const struct user_rec *rec)
{
    pg_param_text(p, rec->row.passkey);
    pg_param_text_or_null(p, rec->name);
    pg_param_bool(p, rec->row.enabled);
    pg_param_bool(p, rec->may_download);
    pg_param_int(p, rec->class_id);
    pg_param_int(p, rec->up_mult);
    pg_param_int(p, rec->down_mult);
}

int pg_admin_user_insert(void *ctx, struct user_rec *rec, bool has_id, struct mk_errbuf *eb)
{
    int err = pg_begin(ctx, "BEGIN", eb);
    if (err != 0) {
        return err;
    }
    err = admin_class_exists(ctx, rec->class_id, eb);
    int64_t id = 0;
    if (err == 0) {
        struct pg_params p = {0};
        admin_param_user(&p, rec);
        if (has_id) {
            pg_param_int(&p, rec->row.id);
        }
        err = admin_insert_id(
            ctx,
            has_id ? "INSERT INTO users (passkey, name, enabled, can_download, class_id,"
                     " upload_multiplier, download_multiplier, id)"
                     " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id"
                   : NULL,
            "INSERT INTO users (passkey, name, enabled, can_download, class_id,"
            " upload_multiplier, download_multiplier, id)"
            " SELECT $1, $2, $3, $4, $5, $6, $7, GREATEST(nextval(pg_get_serial_sequence("
            "'users', 'id')), COALESCE(max(id), 0) + 1) FROM users RETURNING id",
            "SELECT setval(pg_get_serial_sequence('users', 'id'), max(id)) FROM users", &p, &id,
            eb);
    }
    err = pg_end(ctx, err, eb);
    if (err == 0) {
        err = pg_admin_user_get(ctx, (uint32_t)id, rec, eb);
    }
    return err;
}

int pg_admin_user_update(void *ctx, const struct user_rec *rec, struct mk_errbuf *eb)
{
    int err = pg_begin(ctx, "BEGIN", eb);
    if (err != 0) {
        return err;
    }
    err = admin_class_exists(ctx, rec->class_id, eb);
    long changed = 0;
    if (err == 0) {
        struct pg_params p = {0};
        pg_param_int(&p, rec->row.id);
        admin_param_user(&p, rec);
        err = pg_run_count(ctx,
                           "UPDATE users SET passkey = $2, name = $3, enabled = $4,"
                           " can_download = $5, class_id = $6, upload_multiplier = $7,"
                           " download_multiplier = $8 WHERE id = $1",
                           &p, &changed, eb);
    }
    if (err == 0 && changed == 0) {
        err = mk_fail(eb, MK_ENOTFOUND, "user");
    }
    return pg_end(ctx, err, eb);
}

int pg_admin_user_delete(void *ctx, uint32_t id, struct mk_errbuf *eb)
{
    int err = pg_begin(ctx, "BEGIN", eb);
    if (err != 0) {
        return err;
    }
    struct pg_params p = {0};
    pg_param_int(&p, id);
    long changed = 0;
    err = pg_run_count(ctx, "DELETE FROM users WHERE id = $1", &p, &changed, eb);
    if (err == 0 && changed == 0) {
        err = mk_fail(eb, MK_ENOTFOUND, "user");
    }
    if (err == 0) {
        err = pg_run(ctx, "DELETE FROM snatches WHERE user_id = $1", &p, NULL, eb);
    }
    return pg_end(ctx, err, eb);
}

/* ---- torrents ------------------------------------------------------------ */

int pg_admin_torrent_get(void *ctx, const uint8_t info_hash[20], struct torrent_rec *out,
                         struct mk_errbuf *eb)
{
    struct pg_params p = {0};
    pg_param_bytes(&p, info_hash, 20);
    PGresult *r;
    int err = pg_run(ctx,
                     "SELECT id, enabled, deleted, deleted_reason, snatches, COALESCE(name, ''),"
                     " size, freeleech, upload_multiplier, download_multiplier, created_at,"
                     " transferred FROM torrents WHERE info_hash = $1",
                     &p, &r, eb);
    if (err != 0) {
        return err;
    }
    if (PQntuples(r) == 1) {
        uint8_t ih[20];
        memcpy(ih, info_hash, 20); /* info_hash may point into *out */
        memset(out, 0, sizeof(*out));
        out->row.id = pg_u32(r, 0, 0, UINT32_MAX - 1);
        memcpy(out->row.info_hash, ih, 20);
        out->row.enabled = pg_bool(r, 0, 1);
        out->row.deleted = pg_bool(r, 0, 2);
        pg_text(r, 0, 3, out->row.reason, sizeof(out->row.reason));
        out->row.snatches = pg_u32(r, 0, 4, UINT32_MAX);
        pg_text(r, 0, 5, out->name, sizeof(out->name));
        out->has_size = !pg_isnull(r, 0, 6);
        out->size = pg_u64(r, 0, 6);
        out->freeleech = pg_bool(r, 0, 7);
        out->up_mult = pg_u32(r, 0, 8, MK_MULT_MAX);
        out->down_mult = pg_u32(r, 0, 9, MK_MULT_MAX);
        out->created_at = pg_int(r, 0, 10);
        out->transferred = pg_u64(r, 0, 11);
    } else {
        err = mk_fail(eb, MK_ENOTFOUND, "torrent");
    }
    PQclear(r);
    return err;
}

/* $1 info_hash, $2 enabled, $3 deleted, $4 reason, $5 name, $6 size,
 * $7 freeleech, $8 and $9 multipliers. */
static void admin_torrent_params(struct pg_params *p, const struct torrent_rec *rec)
{
    pg_param_bytes(p, rec->row.info_hash, 20);
    pg_param_bool(p, rec->row.enabled);
    pg_param_bool(p, rec->row.deleted);
    pg_param_text(p, rec->row.reason);
    pg_param_text_or_null(p, rec->name);
    if (rec->has_size && rec->size <= INT64_MAX) {
        pg_param_int(p, (int64_t)rec->size);
    } else {
        pg_param_null(p);
    }
    pg_param_bool(p, rec->freeleech);
    pg_param_int(p, rec->up_mult);
    pg_param_int(p, rec->down_mult);
}

int pg_admin_torrent_insert(void *ctx, struct torrent_rec *rec, struct mk_errbuf *eb)
{
    int err = pg_begin(ctx, "BEGIN", eb);
    if (err != 0) {
        return err;
    }
    struct pg_params p = {0};
    admin_torrent_params(&p, rec);
    int64_t id;
    err = admin_insert_id(
        ctx, NULL,
        "INSERT INTO torrents (info_hash, enabled, deleted, deleted_reason, name, size,"
        " freeleech, upload_multiplier, download_multiplier, id)"
        " SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, GREATEST(nextval(pg_get_serial_sequence("
        "'torrents', 'id')), COALESCE(max(id), 0) + 1) FROM torrents RETURNING id",
        "SELECT setval(pg_get_serial_sequence('torrents', 'id'), max(id)) FROM torrents", &p, &id,
        eb);
    err = pg_end(ctx, err, eb);
    if (err == 0) {
        uint8_t ih[20];
        memcpy(ih, rec->row.info_hash, 20);
        err = pg_admin_torrent_get(ctx, ih, rec, eb);
    }
    return err;
}

int pg_admin_torrent_update(void *ctx, const struct torrent_rec *rec, struct mk_errbuf *eb)
{
    struct pg_params p = {0};
    admin_torrent_params(&p, rec);
    long changed = 0;
    int err = pg_run_count(ctx,
                           "UPDATE torrents SET enabled = $2, deleted = $3, deleted_reason = $4,"
                           " name = $5, size = $6, freeleech = $7, upload_multiplier = $8,"
                           " download_multiplier = $9 WHERE info_hash = $1",
                           &p, &changed, eb);
    if (err == 0 && changed == 0) {
        err = mk_fail(eb, MK_ENOTFOUND, "torrent");
    }
    return err;
}

/* ---- whitelist --------------------------------------------------------- */

int pg_admin_whitelist_insert(void *ctx, const struct whitelist_row *row, struct mk_errbuf *eb)
{
    if (row->prefix_len == 0 || row->prefix_len > MK_PREFIX_MAX) {
        return mk_fail(eb, MK_EINVAL, "prefix: %u bytes (1..%d)", row->prefix_len, MK_PREFIX_MAX);
    }
    struct pg_params p = {0};
    pg_param_bytes(&p, row->prefix, row->prefix_len);
    pg_param_text(&p, row->name);
    return pg_run(ctx, "INSERT INTO whitelist (prefix, name) VALUES ($1, $2)", &p, NULL, eb);
}

int pg_admin_whitelist_delete(void *ctx, const uint8_t *prefix, size_t len,
                              struct whitelist_row *out, struct mk_errbuf *eb)
{
    if (len == 0 || len > MK_PREFIX_MAX) {
        return mk_fail(eb, MK_ENOTFOUND, "prefix");
    }
    struct pg_params p = {0};
    pg_param_bytes(&p, prefix, len);
    PGresult *r;
    int err = pg_run(ctx, "DELETE FROM whitelist WHERE prefix = $1 RETURNING name", &p, &r, eb);
    if (err != 0) {
        return err;
    }
    if (PQntuples(r) == 0) {
        err = mk_fail(eb, MK_ENOTFOUND, "prefix");
    } else if (out) {
        memset(out, 0, sizeof(*out));
        memcpy(out->prefix, prefix, len);
        out->prefix_len = (uint8_t)len;
        pg_text(r, 0, 0, out->name, sizeof(out->name));
    }
    PQclear(r);
    return err;
}

/* ---- classes ------------------------------------------------------------- */

#define ADMIN_CLASS_COLS                                                                           \
    "SELECT c.id, c.name, c.upload_multiplier, c.download_multiplier, c.may_download,"            \
    " (SELECT count(*) FROM users u WHERE u.class_id = c.id) FROM classes c"

static void admin_class_row(const PGresult *r, int row, struct class_row *c)
{
    memset(c, 0, sizeof(*c));
    c->id = pg_u32(r, row, 0, UINT32_MAX - 1);
    pg_text(r, row, 1, c->name, sizeof(c->name));
    c->up_mult = pg_u32(r, row, 2, MK_MULT_MAX);
    c->down_mult = pg_u32(r, row, 3, MK_MULT_MAX);
    c->may_download = pg_bool(r, row, 4);
    c->users = pg_u32(r, row, 5, UINT32_MAX);
}

struct admin_class_sink {
    store_class_fn fn;
    void *arg;
};

static int admin_class_list_row(const PGresult *r, void *arg)
{
    const struct admin_class_sink *sink = arg;
    struct class_row c;
    admin_class_row(r, 0, &c);
    return sink->fn(&c, sink->arg);
}

int pg_admin_class_list(void *ctx, store_class_fn fn, void *arg, struct mk_errbuf *eb)
{
    return pg_stream(ctx, ADMIN_CLASS_COLS " ORDER BY c.id", NULL, "classes",
                     admin_class_list_row, &(struct admin_class_sink){.fn = fn, .arg = arg}, eb);
}

int pg_admin_class_get(void *ctx, uint32_t id, struct class_row *out, struct mk_errbuf *eb)
{
    struct pg_params p = {0};
    pg_param_int(&p, id);
    PGresult *r;
    int err = pg_run(ctx, ADMIN_CLASS_COLS " WHERE c.id = $1", &p, &r, eb);
    if (err != 0) {
        return err;
    }
    if (PQntuples(r) == 1) {
        admin_class_row(r, 0, out);
    } else {
        err = mk_fail(eb, MK_ENOTFOUND, "class");
    }
    PQclear(r);
    return err;
}

int pg_admin_class_insert(void *ctx, struct class_row *row, bool has_id, struct mk_errbuf *eb)
{
    int err = pg_begin(ctx, "BEGIN", eb);
    if (err != 0) {
        return err;
    }
    struct pg_params p = {0};
    pg_param_text(&p, row->name);
    pg_param_int(&p, row->up_mult);
    pg_param_int(&p, row->down_mult);
    pg_param_bool(&p, row->may_download);
    if (has_id) {
        pg_param_int(&p, row->id);
    }
    int64_t id = 0;
    err = admin_insert_id(
        ctx,
        has_id ? "INSERT INTO classes (name, upload_multiplier, download_multiplier,"
                 " may_download, id) VALUES ($1, $2, $3, $4, $5) RETURNING id"
               : NULL,
        "INSERT INTO classes (name, upload_multiplier, download_multiplier, may_download, id)"
        " SELECT $1, $2, $3, $4, GREATEST(nextval(pg_get_serial_sequence('classes', 'id')),"
        " COALESCE(max(id), 0) + 1) FROM classes RETURNING id",
        "SELECT setval(pg_get_serial_sequence('classes', 'id'), max(id)) FROM classes", &p, &id,
        eb);
    err = pg_end(ctx, err, eb);
    return err == 0 ? pg_admin_class_get(ctx, (uint32_t)id, row, eb) : err;
}

int pg_admin_class_update(void *ctx, const struct class_row *row, struct mk_errbuf *eb)
{
    struct pg_params p = {0};
    pg_param_int(&p, row->id);
    pg_param_text(&p, row->name);
    pg_param_int(&p, row->up_mult);
    pg_param_int(&p, row->down_mult);
    pg_param_bool(&p, row->may_download);
    long changed = 0;
    int err = pg_run_count(ctx,
                           "UPDATE classes SET name = $2, upload_multiplier = $3,"
                           " download_multiplier = $4, may_download = $5 WHERE id = $1",
                           &p, &changed, eb);
    if (err == 0 && changed == 0) {
        err = mk_fail(eb, MK_ENOTFOUND, "class");
    }
    return err;
}

int pg_admin_class_delete(void *ctx, uint32_t id, struct mk_errbuf *eb)
{
    if (id == MK_CLASS_DEFAULT) {
        return mk_fail(eb, MK_EINVAL, "the default class %d cannot be deleted", MK_CLASS_DEFAULT);
    }
    int err = pg_begin(ctx, "BEGIN", eb);
    if (err != 0) {
        return err;
    }
    struct class_row row;
    err = pg_admin_class_get(ctx, id, &row, eb);
    if (err == 0 && row.users > 0) {
        err = mk_fail(eb, MK_EEXIST, "users");
    }
    if (err == 0) {
        struct pg_params p = {0};
        pg_param_int(&p, id);
        err = pg_run(ctx, "DELETE FROM classes WHERE id = $1", &p, NULL, eb);
    }
    return pg_end(ctx, err, eb);
}

/* ---- settings -------------------------------------------------------------- */

struct admin_setting_sink {
    store_setting_fn fn;
    void *arg;
};

static int admin_setting_row(const PGresult *r, void *arg)
{
    const struct admin_setting_sink *sink = arg;
    struct setting_row row;
    pg_text(r, 0, 0, row.key, sizeof(row.key));
    pg_text(r, 0, 1, row.value, sizeof(row.value));
    return sink->fn(&row, sink->arg);
}

int pg_admin_settings_load(void *ctx, store_setting_fn fn, void *arg, struct mk_errbuf *eb)
{
    return pg_stream(ctx, "SELECT key, value FROM settings ORDER BY key", NULL, "settings",
                     admin_setting_row, &(struct admin_setting_sink){.fn = fn, .arg = arg}, eb);
}

int pg_admin_settings_put(void *ctx, const struct setting_row *rows, size_t n,
                          struct mk_errbuf *eb)
{
    int err = pg_begin(ctx, "BEGIN", eb);
    if (err != 0) {
        return err;
    }
    for (size_t i = 0; i < n && err == 0; i++) {
        struct pg_params p = {0};
        pg_param_text(&p, rows[i].key);
        pg_param_text(&p, rows[i].value);
        err = pg_run(ctx,
                     "INSERT INTO settings (key, value) VALUES ($1, $2)"
                     " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                     &p, NULL, eb);
    }
    return pg_end(ctx, err, eb);
}
