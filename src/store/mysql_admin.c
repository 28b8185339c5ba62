/* store/mysql_admin.c: the mysql backend's admin-API methods and tokens.
 *
 * Owns: reading and writing single users, torrents, whitelist prefixes,
 * classes, settings and freeleech tokens for the admin API, each write one
 * transaction.
 * Not here: the connection, the schema and the runners (mysql.c), the
 * loaders (mysql_load.c), apply() (mysql_apply.c).
 * Invariants: answers match the sqlite and postgres backends' (the
 * conformance suite runs all of them): a duplicate is MK_EEXIST with the
 * column's name as the whole message, a missing row MK_ENOTFOUND naming
 * it, an unreachable or busy server MK_EUNAVAIL. New ids come from
 * AUTO_INCREMENT, which InnoDB keeps past every id inserted, by mika or by
 * a site's own SQL, so the two never collide.
 */
#include "store/mysql_admin.h"

#include <inttypes.h>
#include <string.h>

/* ---- users ------------------------------------------------------------- */

#define ADMIN_USER_COLS                                                                            \
    "SELECT u.id, u.passkey, u.enabled, u.can_download, COALESCE(c.may_download, TRUE),"          \
    " COALESCE(u.name, ''), u.class_id, u.upload_multiplier, u.download_multiplier,"              \
    " u.uploaded, u.downloaded, u.created_at,"                                                     \
    " (SELECT COUNT(*) FROM snatches s WHERE s.user_id = u.id),"                                   \
    " u.raw_uploaded, u.raw_downloaded, u.seed_time, u.leech_time, u.bonus, u.announces"          \
    " FROM users u LEFT JOIN classes c ON c.id = u.class_id"

static void admin_user_rec(const struct my_row *r, struct user_rec *u)
{
    memset(u, 0, sizeof(*u));
    u->row.id = my_col_u32(r, 0, UINT32_MAX - 1);
    my_col_text(r, 1, u->row.passkey, sizeof(u->row.passkey));
    u->row.enabled = my_col_bool(r, 2);
    u->may_download = my_col_bool(r, 3);
    u->row.can_download = u->may_download && my_col_bool(r, 4);
    my_col_text(r, 5, u->name, sizeof(u->name));
    u->class_id = my_col_u32(r, 6, UINT32_MAX - 1);
    u->up_mult = my_col_u32(r, 7, MK_MULT_MAX);
    u->down_mult = my_col_u32(r, 8, MK_MULT_MAX);
    u->uploaded = my_col_u64(r, 9);
    u->downloaded = my_col_u64(r, 10);
    u->created_at = my_col_int(r, 11);
    u->snatches = my_col_u32(r, 12, UINT32_MAX);
    u->raw_uploaded = my_col_u64(r, 13);
    u->raw_downloaded = my_col_u64(r, 14);
    u->seed_time = my_col_u64(r, 15);
    u->leech_time = my_col_u64(r, 16);
    u->bonus = my_col_u64(r, 17);
    u->announces = my_col_u64(r, 18);
}

static int admin_user_fill(const struct my_row *r, void *arg)
{
    admin_user_rec(r, arg);
    return 0;
}

/* Runs a one-row user query: 0 with *out, MK_ENOTFOUND "user", or an error. */
static int admin_user_one(struct my_store *s, struct my_sql *q, struct user_rec *out,
                          struct mk_errbuf *eb)
{
    bool found = false;
    int err = my_one(s, q, NULL, admin_user_fill, out, &found, eb);
    my_sql_free(q);
    return err == 0 && !found ? mk_fail(eb, MK_ENOTFOUND, "user") : err;
}

static int admin_count_row(const struct my_row *r, void *arg)
{
    *(uint64_t *)arg = my_col_u64(r, 0);
    return 0;
}

int my_admin_ping(void *ctx, struct mk_errbuf *eb)
{
    uint64_t n;
    bool found;
    return my_one(ctx, NULL, "SELECT COUNT(*) FROM classes", admin_count_row, &n, &found, eb);
}

int my_admin_user_get(void *ctx, uint32_t id, struct user_rec *out, struct mk_errbuf *eb)
{
    struct my_sql q = {0};
    my_sqlf(&q, ADMIN_USER_COLS " WHERE u.id = %" PRIu32, id);
    return admin_user_one(ctx, &q, out, eb);
}

int my_admin_user_get_by_passkey(void *ctx, const char *passkey, struct user_rec *out,
                                 struct mk_errbuf *eb)
{
    struct my_sql q = {0};
    my_sqlf(&q, ADMIN_USER_COLS " WHERE u.passkey = ");
    my_sql_text(&q, passkey);
    return admin_user_one(ctx, &q, out, eb);
}

/* The filter's WHERE clause; the name prefix compares bytes (utf8mb4_bin). */
static void admin_user_where(struct my_sql *q, const struct user_filter *f)
{
    my_sqlf(q, " WHERE TRUE");
    if (f->enabled >= 0) {
        my_sqlf(q, " AND u.enabled = %d", f->enabled != 0);
    }
    if (f->may_download >= 0) {
        my_sqlf(q, " AND u.can_download = %d", f->may_download != 0);
    }
    if (f->has_class) {
        my_sqlf(q, " AND u.class_id = %" PRIu32, f->class_id);
    }
    if (f->name_prefix[0]) {
        my_sqlf(q, " AND LEFT(u.name, CHAR_LENGTH(");
        my_sql_text(q, f->name_prefix);
        my_sqlf(q, ")) = ");
        my_sql_text(q, f->name_prefix);
    }
}

struct admin_rec_sink {
    store_user_rec_fn fn;
    void *arg;
};

static int admin_user_list_row(const struct my_row *r, void *arg)
{
    const struct admin_rec_sink *sink = arg;
    struct user_rec u;
    admin_user_rec(r, &u);
    return sink->fn(&u, sink->arg);
}

int my_admin_user_list(void *ctx, const struct user_filter *f, store_user_rec_fn fn, void *arg,
                       uint64_t *total, struct mk_errbuf *eb)
{
    struct my_sql count = {0}, page = {0};
    my_sqlf(&count, "SELECT COUNT(*) FROM users u");
    admin_user_where(&count, f);
    my_sqlf(&page, ADMIN_USER_COLS);
    admin_user_where(&page, f);
    my_sqlf(&page, " ORDER BY u.id LIMIT %" PRIu32 " OFFSET %" PRIu64, f->limit, f->offset);
    /* One snapshot, so the count and the page agree. */
    int err = my_begin(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY", eb);
    if (err == 0) {
        bool found;
        *total = 0;
        err = my_one(ctx, &count, NULL, admin_count_row, total, &found, eb);
        if (err == 0) {
            err = my_stream(ctx, &page, NULL, "users", admin_user_list_row,
                            &(struct admin_rec_sink){.fn = fn, .arg = arg}, eb);
        }
        err = my_end(ctx, err, eb);
    }
    my_sql_free(&count);
    my_sql_free(&page);
    return err;
}

/* MK_ENOTFOUND (what) unless sql finds a row; the row stays share-locked
 * until the transaction ends, so it cannot vanish before the write. */
static int admin_exists(struct my_store *s, struct my_sql *q, const char *what,
                        struct mk_errbuf *eb)
{
    uint64_t one = 0;
    bool found = false;
    my_sqlf(q, " LOCK IN SHARE MODE");
    int err = my_one(s, q, NULL, admin_count_row, &one, &found, eb);
    my_sql_free(q);
    return err == 0 && !found ? mk_fail(eb, MK_ENOTFOUND, "%s", what) : err;
}

static int admin_class_exists(struct my_store *s, uint32_t id, struct mk_errbuf *eb)
{
    struct my_sql q = {0};
    my_sqlf(&q, "SELECT 1 FROM classes WHERE id = %" PRIu32, id);
    return admin_exists(s, &q, "class_id", eb);
}

/* The id the last insert used or picked, or MK_ELIMIT past the tracker's ids. */
static int admin_new_id(struct my_store *s, bool has_id, uint32_t given, uint32_t *id,
                        struct mk_errbuf *eb)
{
    uint64_t v = has_id ? given : my_insert_id(s);
    if (v == 0 || v >= UINT32_MAX) {
        return mk_fail(eb, MK_ELIMIT, "id: no id left below %u", UINT32_MAX);
    }
    *id = (uint32_t)v;
    return 0;
}

int my_admin_user_insert(void *ctx, struct user_rec *rec, bool has_id, struct mk_errbuf *eb)
{
    int err = my_begin(ctx, "START TRANSACTION", eb);
    if (err != 0) {
        return err;
    }
    err = admin_class_exists(ctx, rec->class_id, eb);
    uint32_t id = 0;
    if (err == 0) {
        struct my_sql q = {0};
        my_sqlf(&q, "INSERT INTO users (passkey, name, enabled, can_download, class_id,"
                    " upload_multiplier, download_multiplier, created_at%s) VALUES (",
                has_id ? ", id" : "");
        my_sql_text(&q, rec->row.passkey);
        my_sqlf(&q, ", ");
        my_sql_text_or_null(&q, rec->name);
        my_sqlf(&q, ", %d, %d, %" PRIu32 ", %" PRIu32 ", %" PRIu32 ", UNIX_TIMESTAMP()",
                rec->row.enabled, rec->may_download, rec->class_id, rec->up_mult,
                rec->down_mult);
        if (has_id) {
            my_sqlf(&q, ", %" PRIu32, rec->row.id);
        }
        my_sqlf(&q, ")");
        err = my_exec(ctx, &q, NULL, NULL, eb);
        my_sql_free(&q);
        if (err == 0) {
            err = admin_new_id(ctx, has_id, rec->row.id, &id, eb);
        }
    }
    err = my_end(ctx, err, eb);
    return err == 0 ? my_admin_user_get(ctx, id, rec, eb) : err;
}

int my_admin_user_update(void *ctx, const struct user_rec *rec, struct mk_errbuf *eb)
{
    int err = my_begin(ctx, "START TRANSACTION", eb);
    if (err != 0) {
        return err;
    }
    err = admin_class_exists(ctx, rec->class_id, eb);
    uint64_t matched = 0;
    if (err == 0) {
        struct my_sql q = {0};
        my_sqlf(&q, "UPDATE users SET passkey = ");
        my_sql_text(&q, rec->row.passkey);
        my_sqlf(&q, ", name = ");
        my_sql_text_or_null(&q, rec->name);
        my_sqlf(&q,
                ", enabled = %d, can_download = %d, class_id = %" PRIu32
                ", upload_multiplier = %" PRIu32 ", download_multiplier = %" PRIu32
                " WHERE id = %" PRIu32,
                rec->row.enabled, rec->may_download, rec->class_id, rec->up_mult, rec->down_mult,
                rec->row.id);
        err = my_exec_update(ctx, &q, &matched, eb);
        my_sql_free(&q);
    }
    if (err == 0 && matched == 0) {
        err = mk_fail(eb, MK_ENOTFOUND, "user");
    }
    return my_end(ctx, err, eb);
}

int my_admin_user_delete(void *ctx, uint32_t id, struct mk_errbuf *eb)
{
    int err = my_begin(ctx, "START TRANSACTION", eb);
    if (err != 0) {
        return err;
    }
    struct my_sql q = {0};
    my_sqlf(&q, "DELETE FROM users WHERE id = %" PRIu32, id);
    uint64_t changed = 0;
    err = my_exec(ctx, &q, NULL, &changed, eb);
    if (err == 0 && changed == 0) {
        err = mk_fail(eb, MK_ENOTFOUND, "user");
    }
    if (err == 0) {
        my_sql_reset(&q);
        my_sqlf(&q, "DELETE FROM snatches WHERE user_id = %" PRIu32, id);
        err = my_exec(ctx, &q, NULL, NULL, eb);
    }
    my_sql_free(&q);
    return my_end(ctx, err, eb);
}

/* ---- torrents ------------------------------------------------------------ */

static int admin_torrent_fill(const struct my_row *r, void *arg)
{
    struct torrent_rec *out = arg;
    memset(out, 0, sizeof(*out));
    out->row.id = my_col_u32(r, 0, UINT32_MAX - 1);
    out->row.enabled = my_col_bool(r, 1);
    out->row.deleted = my_col_bool(r, 2);
    my_col_text(r, 3, out->row.reason, sizeof(out->row.reason));
    out->row.snatches = my_col_u32(r, 4, UINT32_MAX);
    my_col_text(r, 5, out->name, sizeof(out->name));
    out->has_size = !my_col_null(r, 6);
    out->size = my_col_u64(r, 6);
    out->freeleech = my_col_bool(r, 7);
    out->up_mult = my_col_u32(r, 8, MK_MULT_MAX);
    out->down_mult = my_col_u32(r, 9, MK_MULT_MAX);
    out->created_at = my_col_int(r, 10);
    out->transferred = my_col_u64(r, 11);
    if (!my_col_null(r, 12) && r->len[12] == 20) {
        memcpy(out->row.info_hash, r->v[12], 20);
    }
    return 0;
}

/* One torrent, by id (by_id) or by info_hash. */
static int admin_torrent_find(struct my_store *s, bool by_id, uint32_t id,
                              const uint8_t *info_hash, struct torrent_rec *out,
                              struct mk_errbuf *eb)
{
    struct my_sql q = {0};
    my_sqlf(&q, "SELECT id, enabled, deleted, deleted_reason, snatches, COALESCE(name, ''),"
                " size, freeleech, upload_multiplier, download_multiplier, created_at,"
                " transferred, info_hash FROM torrents WHERE ");
    if (by_id) {
        my_sqlf(&q, "id = %" PRIu32, id);
    } else {
        my_sqlf(&q, "info_hash = ");
        my_sql_bytes(&q, info_hash, 20);
    }
    bool found = false;
    int err = my_one(s, &q, NULL, admin_torrent_fill, out, &found, eb);
    my_sql_free(&q);
    return err == 0 && !found ? mk_fail(eb, MK_ENOTFOUND, "torrent") : err;
}

int my_admin_torrent_get(void *ctx, const uint8_t info_hash[20], struct torrent_rec *out,
                         struct mk_errbuf *eb)
{
    uint8_t ih[20];
    memcpy(ih, info_hash, 20); /* info_hash may point into *out */
    return admin_torrent_find(ctx, false, 0, ih, out, eb);
}

int my_admin_torrent_get_by_id(void *ctx, uint32_t id, struct torrent_rec *out,
                               struct mk_errbuf *eb)
{
    return admin_torrent_find(ctx, true, id, NULL, out, eb);
}

/* rec's written columns, "col = value, ..." (update) or "value, ..." (insert),
 * in the order of ADMIN_TORRENT_SET. */
static void admin_torrent_values(struct my_sql *q, const struct torrent_rec *rec, bool named)
{
    my_sqlf(q, "%s%d, %s%d, %s", named ? "enabled = " : "", rec->row.enabled,
            named ? "deleted = " : "", rec->row.deleted, named ? "deleted_reason = " : "");
    my_sql_text(q, rec->row.reason);
    my_sqlf(q, ", %s", named ? "name = " : "");
    my_sql_text_or_null(q, rec->name);
    my_sqlf(q, ", %s", named ? "size = " : "");
    if (rec->has_size) {
        my_sqlf(q, "%" PRIu64, rec->size);
    } else {
        my_sqlf(q, "NULL");
    }
    my_sqlf(q, ", %s%d, %s%" PRIu32 ", %s%" PRIu32, named ? "freeleech = " : "", rec->freeleech,
            named ? "upload_multiplier = " : "", rec->up_mult,
            named ? "download_multiplier = " : "", rec->down_mult);
}

int my_admin_torrent_insert(void *ctx, struct torrent_rec *rec, struct mk_errbuf *eb)
{
    int err = my_begin(ctx, "START TRANSACTION", eb);
    if (err != 0) {
        return err;
    }
    struct my_sql q = {0};
    my_sqlf(&q, "INSERT INTO torrents (enabled, deleted, deleted_reason, name, size, freeleech,"
                " upload_multiplier, download_multiplier, info_hash, created_at) VALUES (");
    admin_torrent_values(&q, rec, false);
    my_sqlf(&q, ", ");
    my_sql_bytes(&q, rec->row.info_hash, 20);
    my_sqlf(&q, ", UNIX_TIMESTAMP())");
    err = my_exec(ctx, &q, NULL, NULL, eb);
    my_sql_free(&q);
    uint32_t id = 0;
    if (err == 0) {
        err = admin_new_id(ctx, false, 0, &id, eb);
    }
    err = my_end(ctx, err, eb);
    return err == 0 ? my_admin_torrent_get_by_id(ctx, id, rec, eb) : err;
}

int my_admin_torrent_update(void *ctx, const struct torrent_rec *rec, struct mk_errbuf *eb)
{
    struct my_sql q = {0};
    my_sqlf(&q, "UPDATE torrents SET ");
    admin_torrent_values(&q, rec, true);
    my_sqlf(&q, " WHERE info_hash = ");
    my_sql_bytes(&q, rec->row.info_hash, 20);
    uint64_t matched = 0;
    int err = my_exec_update(ctx, &q, &matched, eb);
    my_sql_free(&q);
    return err == 0 && matched == 0 ? mk_fail(eb, MK_ENOTFOUND, "torrent") : err;
}

/* ---- whitelist --------------------------------------------------------- */

int my_admin_whitelist_insert(void *ctx, const struct whitelist_row *row, struct mk_errbuf *eb)
{
    if (row->prefix_len == 0 || row->prefix_len > MK_PREFIX_MAX) {
        return mk_fail(eb, MK_EINVAL, "prefix: %u bytes (1..%d)", row->prefix_len, MK_PREFIX_MAX);
    }
    struct my_sql q = {0};
    my_sqlf(&q, "INSERT INTO whitelist (prefix, name) VALUES (");
    my_sql_bytes(&q, row->prefix, row->prefix_len);
    my_sqlf(&q, ", ");
    my_sql_text(&q, row->name);
    my_sqlf(&q, ")");
    int err = my_exec(ctx, &q, NULL, NULL, eb);
    my_sql_free(&q);
    /* The prefix is the table's PRIMARY key, which mysql.c names "id". */
    return err == MK_EEXIST ? mk_fail(eb, MK_EEXIST, "prefix") : err;
}

static int admin_name_row(const struct my_row *r, void *arg)
{
    struct whitelist_row *out = arg;
    my_col_text(r, 0, out->name, sizeof(out->name));
    return 0;
}

int my_admin_whitelist_delete(void *ctx, const uint8_t *prefix, size_t len,
                              struct whitelist_row *out, struct mk_errbuf *eb)
{
    if (len == 0 || len > MK_PREFIX_MAX) {
        return mk_fail(eb, MK_ENOTFOUND, "prefix");
    }
    int err = my_begin(ctx, "START TRANSACTION", eb);
    if (err != 0) {
        return err;
    }
    struct whitelist_row row;
    memset(&row, 0, sizeof(row));
    memcpy(row.prefix, prefix, len);
    row.prefix_len = (uint8_t)len;
    struct my_sql q = {0};
    my_sqlf(&q, "SELECT name FROM whitelist WHERE prefix = ");
    my_sql_bytes(&q, prefix, len);
    my_sqlf(&q, " FOR UPDATE");
    bool found = false;
    err = my_one(ctx, &q, NULL, admin_name_row, &row, &found, eb);
    if (err == 0 && !found) {
        err = mk_fail(eb, MK_ENOTFOUND, "prefix");
    }
    if (err == 0) {
        my_sql_reset(&q);
        my_sqlf(&q, "DELETE FROM whitelist WHERE prefix = ");
        my_sql_bytes(&q, prefix, len);
        err = my_exec(ctx, &q, NULL, NULL, eb);
    }
    my_sql_free(&q);
    err = my_end(ctx, err, eb);
    if (err == 0 && out) {
        *out = row;
    }
    return err;
}

/* ---- classes ------------------------------------------------------------- */

#define ADMIN_CLASS_COLS                                                                           \
    "SELECT c.id, c.name, c.upload_multiplier, c.download_multiplier, c.may_download,"            \
    " (SELECT COUNT(*) FROM users u WHERE u.class_id = c.id) FROM classes c"

static int admin_class_fill(const struct my_row *r, void *arg)
{
    struct class_row *c = arg;
    memset(c, 0, sizeof(*c));
    c->id = my_col_u32(r, 0, UINT32_MAX - 1);
    my_col_text(r, 1, c->name, sizeof(c->name));
    c->up_mult = my_col_u32(r, 2, MK_MULT_MAX);
    c->down_mult = my_col_u32(r, 3, MK_MULT_MAX);
    c->may_download = my_col_bool(r, 4);
    c->users = my_col_u32(r, 5, UINT32_MAX);
    return 0;
}

struct admin_class_sink {
    store_class_fn fn;
    void *arg;
};

static int admin_class_list_row(const struct my_row *r, void *arg)
{
    const struct admin_class_sink *sink = arg;
    struct class_row c;
    admin_class_fill(r, &c);
    return sink->fn(&c, sink->arg);
}

int my_admin_class_list(void *ctx, store_class_fn fn, void *arg, struct mk_errbuf *eb)
{
    return my_stream(ctx, NULL, ADMIN_CLASS_COLS " ORDER BY c.id", "classes",
                     admin_class_list_row, &(struct admin_class_sink){.fn = fn, .arg = arg}, eb);
}

int my_admin_class_get(void *ctx, uint32_t id, struct class_row *out, struct mk_errbuf *eb)
{
    struct my_sql q = {0};
    my_sqlf(&q, ADMIN_CLASS_COLS " WHERE c.id = %" PRIu32, id);
    bool found = false;
    int err = my_one(ctx, &q, NULL, admin_class_fill, out, &found, eb);
    my_sql_free(&q);
    return err == 0 && !found ? mk_fail(eb, MK_ENOTFOUND, "class") : err;
}

int my_admin_class_insert(void *ctx, struct class_row *row, bool has_id, struct mk_errbuf *eb)
{
    int err = my_begin(ctx, "START TRANSACTION", eb);
    if (err != 0) {
        return err;
    }
    struct my_sql q = {0};
    my_sqlf(&q, "INSERT INTO classes (name, upload_multiplier, download_multiplier,"
                " may_download%s) VALUES (", has_id ? ", id" : "");
    my_sql_text(&q, row->name);
    my_sqlf(&q, ", %" PRIu32 ", %" PRIu32 ", %d", row->up_mult, row->down_mult,
            row->may_download);
    if (has_id) {
        my_sqlf(&q, ", %" PRIu32, row->id);
    }
    my_sqlf(&q, ")");
    err = my_exec(ctx, &q, NULL, NULL, eb);
    my_sql_free(&q);
    uint32_t id = 0;
    if (err == 0) {
        err = admin_new_id(ctx, has_id, row->id, &id, eb);
    }
    err = my_end(ctx, err, eb);
    return err == 0 ? my_admin_class_get(ctx, id, row, eb) : err;
}

int my_admin_class_update(void *ctx, const struct class_row *row, struct mk_errbuf *eb)
{
    struct my_sql q = {0};
    my_sqlf(&q, "UPDATE classes SET name = ");
    my_sql_text(&q, row->name);
    my_sqlf(&q,
            ", upload_multiplier = %" PRIu32 ", download_multiplier = %" PRIu32
            ", may_download = %d WHERE id = %" PRIu32,
            row->up_mult, row->down_mult, row->may_download, row->id);
    uint64_t matched = 0;
    int err = my_exec_update(ctx, &q, &matched, eb);
    my_sql_free(&q);
    return err == 0 && matched == 0 ? mk_fail(eb, MK_ENOTFOUND, "class") : err;
}

int my_admin_class_delete(void *ctx, uint32_t id, struct mk_errbuf *eb)
{
    if (id == MK_CLASS_DEFAULT) {
        return mk_fail(eb, MK_EINVAL, "the default class %d cannot be deleted", MK_CLASS_DEFAULT);
    }
    int err = my_begin(ctx, "START TRANSACTION", eb);
    if (err != 0) {
        return err;
    }
    struct class_row row;
    err = my_admin_class_get(ctx, id, &row, eb);
    if (err == 0 && row.users > 0) {
        err = mk_fail(eb, MK_EEXIST, "users");
    }
    if (err == 0) {
        struct my_sql q = {0};
        my_sqlf(&q, "DELETE FROM classes WHERE id = %" PRIu32, id);
        err = my_exec(ctx, &q, NULL, NULL, eb);
        my_sql_free(&q);
    }
    return my_end(ctx, err, eb);
}

/* ---- settings -------------------------------------------------------------- */

struct admin_setting_sink {
    store_setting_fn fn;
    void *arg;
};

static int admin_setting_row(const struct my_row *r, void *arg)
{
    const struct admin_setting_sink *sink = arg;
    struct setting_row row;
    my_col_text(r, 0, row.key, sizeof(row.key));
    my_col_text(r, 1, row.value, sizeof(row.value));
    return sink->fn(&row, sink->arg);
}

int my_admin_settings_load(void *ctx, store_setting_fn fn, void *arg, struct mk_errbuf *eb)
{
    return my_stream(ctx, NULL, "SELECT `key`, value FROM settings ORDER BY `key`", "settings",
                     admin_setting_row, &(struct admin_setting_sink){.fn = fn, .arg = arg}, eb);
}

int my_admin_settings_put(void *ctx, const struct setting_row *rows, size_t n,
                          struct mk_errbuf *eb)
{
    if (n == 0) {
        return 0;
    }
    /* One statement: atomic on its own. */
    struct my_sql q = {0};
    my_sqlf(&q, "INSERT INTO settings (`key`, value) VALUES ");
    for (size_t i = 0; i < n; i++) {
        my_sqlf(&q, "%s(", i ? ", " : "");
        my_sql_text(&q, rows[i].key);
        my_sqlf(&q, ", ");
        my_sql_text(&q, rows[i].value);
        my_sqlf(&q, ")");
    }
    my_sqlf(&q, " ON DUPLICATE KEY UPDATE value = VALUES(value)");
    int err = my_exec(ctx, &q, NULL, NULL, eb);
    my_sql_free(&q);
    return err;
}

/* ---- tokens ---------------------------------------------------------------- */

struct admin_token_sink {
    store_token_fn fn;
    void *arg;
};

static int admin_token_row(const struct my_row *r, void *arg)
{
    const struct admin_token_sink *sink = arg;
    struct token_row row = {
        .user_id = my_col_u32(r, 0, UINT32_MAX),
        .up_mult = my_col_u32(r, 2, MK_MULT_MAX),
        .down_mult = my_col_u32(r, 3, MK_MULT_MAX),
        .expires = my_col_int(r, 4),
        .torrent_id = my_col_u32(r, 5, UINT32_MAX),
    };
    if (!my_col_null(r, 1) && r->len[1] == 20) {
        memcpy(row.info_hash, r->v[1], 20);
    }
    return sink->fn(&row, sink->arg);
}

int my_admin_load_tokens(void *ctx, uint32_t user_id, int64_t now, store_token_fn fn, void *arg,
                         struct mk_errbuf *eb)
{
    struct my_sql q = {0};
    my_sqlf(&q,
            "SELECT k.user_id, t.info_hash, k.upload_multiplier, k.download_multiplier,"
            " k.expires_at, k.torrent_id FROM tokens k LEFT JOIN torrents t ON t.id = k.torrent_id"
            " WHERE (k.expires_at = 0 OR k.expires_at > %" PRId64 ")",
            now);
    if (user_id) {
        my_sqlf(&q, " AND k.user_id = %" PRIu32, user_id);
    }
    my_sqlf(&q, " ORDER BY k.user_id, k.torrent_id");
    int err = my_stream(ctx, &q, NULL, "tokens", admin_token_row,
                        &(struct admin_token_sink){.fn = fn, .arg = arg}, eb);
    my_sql_free(&q);
    return err;
}

static int admin_id_row(const struct my_row *r, void *arg)
{
    *(uint32_t *)arg = my_col_u32(r, 0, UINT32_MAX);
    return 0;
}

/* key's torrent id: its own, or the one with its info_hash (0: none). */
static int admin_token_torrent(struct my_store *s, const struct token_row *key, uint32_t *id,
                               struct mk_errbuf *eb)
{
    *id = key->torrent_id;
    if (*id) {
        return 0;
    }
    struct my_sql q = {0};
    my_sqlf(&q, "SELECT id FROM torrents WHERE info_hash = ");
    my_sql_bytes(&q, key->info_hash, 20);
    bool found;
    int err = my_one(s, &q, NULL, admin_id_row, id, &found, eb);
    my_sql_free(&q);
    return err;
}

int my_admin_token_put(void *ctx, const struct token_row *row, struct mk_errbuf *eb)
{
    int err = my_begin(ctx, "START TRANSACTION", eb);
    if (err != 0) {
        return err;
    }
    struct my_sql q = {0};
    my_sqlf(&q, "SELECT 1 FROM users WHERE id = %" PRIu32, row->user_id);
    err = admin_exists(ctx, &q, "user or torrent", eb);
    uint32_t tid = 0;
    if (err == 0) {
        err = admin_token_torrent(ctx, row, &tid, eb);
    }
    if (err == 0 && tid == 0) {
        err = mk_fail(eb, MK_ENOTFOUND, "user or torrent");
    }
    if (err == 0) {
        my_sqlf(&q,
                "INSERT INTO tokens (user_id, torrent_id, upload_multiplier,"
                " download_multiplier, expires_at) VALUES (%" PRIu32 ", %" PRIu32 ", %" PRIu32
                ", %" PRIu32 ", %" PRId64 ") ON DUPLICATE KEY UPDATE"
                " upload_multiplier = VALUES(upload_multiplier),"
                " download_multiplier = VALUES(download_multiplier),"
                " expires_at = VALUES(expires_at)",
                row->user_id, tid, row->up_mult, row->down_mult, row->expires);
        err = my_exec(ctx, &q, NULL, NULL, eb);
        my_sql_free(&q);
    }
    return my_end(ctx, err, eb);
}

int my_admin_token_delete(void *ctx, const struct token_row *key, struct mk_errbuf *eb)
{
    uint32_t tid = 0;
    int err = admin_token_torrent(ctx, key, &tid, eb);
    if (err != 0) {
        return err;
    }
    struct my_sql q = {0};
    my_sqlf(&q, "DELETE FROM tokens WHERE user_id = %" PRIu32 " AND torrent_id = %" PRIu32,
            key->user_id, tid);
    uint64_t changed = 0;
    err = tid ? my_exec(ctx, &q, NULL, &changed, eb) : 0;
    my_sql_free(&q);
    return err == 0 && changed != 1 ? mk_fail(eb, MK_ENOTFOUND, "token") : err;
}
