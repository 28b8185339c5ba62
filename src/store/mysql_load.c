/* store/mysql_load.c: the mysql backend's loaders and paged reads.
 *
 * Owns: streaming users, torrents, whitelist, snatches and peers at start-up
 * (one row at a time off the socket), pruning peers, and one user's history
 * and suspicious uploads a page at a time.
 * Not here: the connection and the runners (mysql.c), apply() (mysql_apply.c).
 * Invariant: rows that break the store.h contract are skipped with a
 * warning, never passed on.
 */
#include "store/mysql_admin.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"

/* ---- loaders ----------------------------------------------------------------- */

/* The caller's callback for one load: exactly one of the fn fields is set. */
struct my_sink {
    store_user_fn user;
    store_torrent_fn torrent;
    store_whitelist_fn whitelist;
    store_snatch_fn snatch;
    store_peer_fn peer;
    store_history_fn history;
    store_suspicious_fn suspicious;
    void *arg;
};

/* An id that fits the tracker's uint32 ids (UINT32_MAX is reserved by u32set). */
static bool my_id_ok(const struct my_row *r, unsigned col)
{
    return !my_col_null(r, col) && r->v[col][0] != '-' && my_col_u64(r, col) < UINT32_MAX;
}

static uint32_t my_mult(const struct my_row *r, unsigned col)
{
    return my_col_u32(r, col, MK_MULT_MAX);
}

static int my_user_row(const struct my_row *r, void *arg)
{
    const struct my_sink *sink = arg;
    int64_t id = my_col_int(r, 0);
    if (!my_id_ok(r, 0)) {
        mk_log(MK_LOG_WARN, "store.mysql", "users row %" PRId64 " skipped: id out of range", id);
        return 0;
    }
    const char *pk = r->v[1] ? r->v[1] : "";
    size_t len = r->v[1] ? r->len[1] : 0;
    if (len == 0 || len > MK_PASSKEY_MAX) {
        mk_log(MK_LOG_WARN, "store.mysql",
               "users row %" PRId64 " skipped: passkey is %zu bytes (1..%d)", id, len,
               MK_PASSKEY_MAX);
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)pk[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
            mk_log(MK_LOG_WARN, "store.mysql",
                   "users row %" PRId64 " skipped: passkey has a character outside [A-Za-z0-9]",
                   id);
            return 0;
        }
    }
    struct user_row row = {
        .id = (uint32_t)id,
        .enabled = my_col_bool(r, 2),
        .can_download = my_col_bool(r, 3),
        .has_mults = true,
        .class_up = my_mult(r, 4),
        .class_down = my_mult(r, 5),
        .personal_up = my_mult(r, 6),
        .personal_down = my_mult(r, 7),
    };
    memcpy(row.passkey, pk, len);
    row.passkey[len] = '\0';
    return sink->user(&row, sink->arg);
}

static bool my_hash(const struct my_row *r, unsigned col, uint8_t out[20])
{
    if (my_col_null(r, col) || r->len[col] != 20) {
        return false;
    }
    memcpy(out, r->v[col], 20);
    return true;
}

static int my_torrent_row(const struct my_row *r, void *arg)
{
    const struct my_sink *sink = arg;
    int64_t id = my_col_int(r, 0);
    if (!my_id_ok(r, 0)) {
        mk_log(MK_LOG_WARN, "store.mysql", "torrents row %" PRId64 " skipped: id out of range",
               id);
        return 0;
    }
    struct torrent_row row = {
        .id = (uint32_t)id,
        .enabled = my_col_bool(r, 2),
        .deleted = my_col_bool(r, 3),
        .snatches = my_col_u32(r, 5, UINT32_MAX),
        .has_mults = true,
        .freeleech = my_col_bool(r, 6),
        .up_mult = my_mult(r, 7),
        .down_mult = my_mult(r, 8),
        .size = my_col_u64(r, 9),
    };
    if (!my_hash(r, 1, row.info_hash)) {
        mk_log(MK_LOG_WARN, "store.mysql",
               "torrents row %" PRId64 " skipped: info_hash is not 20 bytes", id);
        return 0;
    }
    if (my_col_text(r, 4, row.reason, sizeof(row.reason))) {
        mk_log(MK_LOG_WARN, "store.mysql",
               "torrents row %" PRId64 ": deleted_reason cut to %zu bytes", id, strlen(row.reason));
    }
    return sink->torrent(&row, sink->arg);
}

static int my_whitelist_row(const struct my_row *r, void *arg)
{
    const struct my_sink *sink = arg;
    size_t plen = my_col_null(r, 0) ? 0 : r->len[0];
    if (plen == 0 || plen > MK_PREFIX_MAX) {
        mk_log(MK_LOG_WARN, "store.mysql", "whitelist row skipped: prefix is %zu bytes (1..%d)",
               plen, MK_PREFIX_MAX);
        return 0;
    }
    struct whitelist_row row = {.prefix_len = (uint8_t)plen};
    memcpy(row.prefix, r->v[0], plen);
    if (my_col_text(r, 1, row.name, sizeof(row.name))) {
        mk_log(MK_LOG_WARN, "store.mysql", "whitelist row: name cut to %zu bytes",
               strlen(row.name));
    }
    return sink->whitelist(&row, sink->arg);
}

static int my_snatch_row(const struct my_row *r, void *arg)
{
    const struct my_sink *sink = arg;
    if (!my_id_ok(r, 0) || !my_id_ok(r, 1)) {
        mk_log(MK_LOG_WARN, "store.mysql",
               "snatches row (user_id %" PRId64 ", torrent_id %" PRId64 ") skipped: malformed",
               my_col_int(r, 0), my_col_int(r, 1));
        return 0;
    }
    struct snatch_row row = {
        .user_id = (uint32_t)my_col_int(r, 0),
        .torrent_id = (uint32_t)my_col_int(r, 1),
        .at = my_col_int(r, 2),
    };
    /* No torrent row here (gone, or kept in another backend): all zero. */
    my_hash(r, 3, row.info_hash);
    return sink->snatch(&row, sink->arg);
}

static int my_peer_row(const struct my_row *r, void *arg)
{
    const struct my_sink *sink = arg;
    int64_t family = my_col_int(r, 3), port = my_col_int(r, 5);
    size_t iplen = my_col_null(r, 4) ? 0 : r->len[4];
    struct peer_row row;
    memset(&row, 0, sizeof(row));
    if (!my_id_ok(r, 0) || !my_id_ok(r, 1) || my_col_null(r, 2) || r->len[2] != 20 ||
        !((family == 4 && iplen == 4) || (family == 6 && iplen == 16)) || port < 1 ||
        port > 65535) {
        mk_log(MK_LOG_WARN, "store.mysql",
               "peers row (torrent_id %" PRId64 ", user_id %" PRId64 ") skipped: malformed",
               my_col_int(r, 0), my_col_int(r, 1));
        return 0;
    }
    row.torrent_id = (uint32_t)my_col_int(r, 0);
    row.user_id = (uint32_t)my_col_int(r, 1);
    memcpy(row.peer_id, r->v[2], 20);
    row.family = (uint8_t)family;
    memcpy(row.ip, r->v[4], iplen);
    row.port = (uint16_t)port;
    row.uploaded = my_col_u64(r, 6);
    row.downloaded = my_col_u64(r, 7);
    row.seeder = my_col_bool(r, 8);
    row.partial = my_col_bool(r, 9);
    row.last_seen = my_col_int(r, 10);
    my_hash(r, 11, row.info_hash);
    return sink->peer(&row, sink->arg);
}

int my_load_users(void *ctx, store_user_fn fn, void *arg, struct mk_errbuf *eb)
{
    /* The hot path needs the effective right: the user's own AND the class's. */
    return my_stream(ctx, NULL,
                     "SELECT u.id, u.passkey, u.enabled,"
                     " u.can_download AND COALESCE(c.may_download, TRUE),"
                     " COALESCE(c.upload_multiplier, 1000), COALESCE(c.download_multiplier, 1000),"
                     " u.upload_multiplier, u.download_multiplier"
                     " FROM users u LEFT JOIN classes c ON c.id = u.class_id ORDER BY u.id",
                     "users", my_user_row, &(struct my_sink){.user = fn, .arg = arg}, eb);
}

int my_load_torrents(void *ctx, store_torrent_fn fn, void *arg, struct mk_errbuf *eb)
{
    return my_stream(ctx, NULL,
                     "SELECT id, info_hash, enabled, deleted, deleted_reason, snatches,"
                     " freeleech, upload_multiplier, download_multiplier, size"
                     " FROM torrents ORDER BY id",
                     "torrents", my_torrent_row, &(struct my_sink){.torrent = fn, .arg = arg},
                     eb);
}

int my_load_whitelist(void *ctx, store_whitelist_fn fn, void *arg, struct mk_errbuf *eb)
{
    return my_stream(ctx, NULL, "SELECT prefix, name FROM whitelist ORDER BY prefix",
                     "whitelist", my_whitelist_row,
                     &(struct my_sink){.whitelist = fn, .arg = arg}, eb);
}

int my_load_snatches(void *ctx, store_snatch_fn fn, void *arg, struct mk_errbuf *eb)
{
    /* In the primary key's order: the first row comes at once, where an
     * order the key does not give would sort every snatch first (and a sort
     * longer than the read timeout would fail every start-up). */
    return my_stream(ctx, NULL,
                     "SELECT s.user_id, s.torrent_id, s.at, t.info_hash"
                     " FROM snatches s LEFT JOIN torrents t ON t.id = s.torrent_id"
                     " ORDER BY s.user_id, s.torrent_id",
                     "snatches", my_snatch_row, &(struct my_sink){.snatch = fn, .arg = arg}, eb);
}

int my_load_peers(void *ctx, int64_t seen_since, store_peer_fn fn, void *arg,
                         struct mk_errbuf *eb)
{
    struct my_sql q = {0};
    my_sqlf(&q,
            "SELECT p.torrent_id, p.user_id, p.peer_id, p.family, p.ip, p.port,"
            " p.uploaded, p.downloaded, p.seeder, p.partial, p.last_seen, t.info_hash"
            " FROM peers p LEFT JOIN torrents t ON t.id = p.torrent_id"
            " WHERE p.last_seen >= %" PRId64 " AND NOT p.gone",
            seen_since);
    int err = my_stream(ctx, &q, NULL, "peers", my_peer_row,
                        &(struct my_sink){.peer = fn, .arg = arg}, eb);
    my_sql_free(&q);
    return err;
}

int my_prune_peers(void *ctx, int64_t seen_before, struct mk_errbuf *eb)
{
    struct my_sql q = {0};
    my_sqlf(&q, "DELETE FROM peers WHERE last_seen < %" PRId64, seen_before);
    int err = my_exec(ctx, &q, NULL, NULL, eb);
    my_sql_free(&q);
    return err;
}

int my_prune_applied(void *ctx, int64_t applied_before, uint16_t node, struct mk_errbuf *eb)
{
    struct my_sql q = {0};
    my_sqlf(&q, "DELETE FROM journal_applied WHERE applied_at < %" PRId64, applied_before);
    if (node) {
        my_sqlf(&q, " AND (boot >> 48) = %u", (unsigned)node); /* boot is unsigned */
    }
    int err = my_exec(ctx, &q, NULL, NULL, eb);
    my_sql_free(&q);
    return err;
}

static int my_count_row(const struct my_row *r, void *arg)
{
    *(uint64_t *)arg = my_col_u64(r, 0);
    return 0;
}

/* count_sql's count and page's rows from one snapshot, so the two agree. */
static int my_user_page(struct my_store *s, const struct my_sql *count_sql,
                        const struct my_sql *page, const char *what, my_row_fn fn,
                        const struct my_sink *sink, uint64_t *total, struct mk_errbuf *eb)
{
    int err = my_begin(s, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY", eb);
    if (err < 0) {
        return err;
    }
    bool found;
    *total = 0;
    err = my_one(s, count_sql, NULL, my_count_row, total, &found, eb);
    if (err == 0) {
        err = my_stream(s, page, NULL, what, fn, (void *)sink, eb);
    }
    return my_end(s, err, eb);
}

static int my_history_row(const struct my_row *r, void *arg)
{
    const struct my_sink *sink = arg;
    struct history_row row;
    memset(&row, 0, sizeof(row));
    row.torrent_id = my_col_u32(r, 0, UINT32_MAX);
    my_hash(r, 1, row.info_hash);
    uint64_t *u64[] = {&row.size, &row.uploaded, &row.downloaded, &row.raw_uploaded,
                       &row.raw_downloaded, &row.seed_time, &row.leech_time, &row.announces};
    for (unsigned i = 0; i < 8; i++) {
        *u64[i] = my_col_u64(r, 2 + i);
    }
    row.first_announce = my_col_int(r, 10);
    row.last_announce = my_col_int(r, 11);
    row.completed_at = my_col_int(r, 12);
    return sink->history(&row, sink->arg);
}

int my_user_history(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
                           store_history_fn fn, void *arg, uint64_t *total, struct mk_errbuf *eb)
{
    struct my_sql count = {0}, page = {0};
    my_sqlf(&count, "SELECT COUNT(*) FROM user_torrents WHERE user_id = %" PRIu32, user_id);
    my_sqlf(&page,
            "SELECT h.torrent_id, t.info_hash, COALESCE(t.size, 0), h.uploaded,"
            " h.downloaded, h.raw_uploaded, h.raw_downloaded, h.seed_time,"
            " h.leech_time, h.announces, h.first_announce, h.last_announce,"
            " COALESCE(h.completed_at, 0)"
            " FROM user_torrents h LEFT JOIN torrents t ON t.id = h.torrent_id"
            " WHERE h.user_id = %" PRIu32 " ORDER BY h.last_announce DESC, h.torrent_id"
            " LIMIT %" PRIu32 " OFFSET %" PRIu64,
            user_id, limit, offset);
    int err = my_user_page(ctx, &count, &page, "user_torrents", my_history_row,
                           &(struct my_sink){.history = fn, .arg = arg}, total, eb);
    my_sql_free(&count);
    my_sql_free(&page);
    return err;
}

static int my_suspicious_row(const struct my_row *r, void *arg)
{
    const struct my_sink *sink = arg;
    struct suspicious_row row;
    memset(&row, 0, sizeof(row));
    my_hash(r, 0, row.info_hash);
    row.at = my_col_int(r, 1);
    row.uploaded = my_col_u64(r, 2);
    my_col_text(r, 3, row.reason, sizeof(row.reason));
    row.torrent_id = my_col_u32(r, 4, UINT32_MAX);
    return sink->suspicious(&row, sink->arg);
}

int my_user_suspicious(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
                              store_suspicious_fn fn, void *arg, uint64_t *total,
                              struct mk_errbuf *eb)
{
    struct my_sql count = {0}, page = {0};
    my_sqlf(&count, "SELECT COUNT(*) FROM suspicious WHERE user_id = %" PRIu32, user_id);
    my_sqlf(&page,
            "SELECT t.info_hash, x.at, x.uploaded, x.reason, x.torrent_id FROM suspicious x"
            " LEFT JOIN torrents t ON t.id = x.torrent_id WHERE x.user_id = %" PRIu32
            " ORDER BY x.at DESC, x.id DESC LIMIT %" PRIu32 " OFFSET %" PRIu64,
            user_id, limit, offset);
    int err = my_user_page(ctx, &count, &page, "suspicious", my_suspicious_row,
                           &(struct my_sink){.suspicious = fn, .arg = arg}, total, eb);
    my_sql_free(&count);
    my_sql_free(&page);
    return err;
}
