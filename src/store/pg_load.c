/* store/pg_load.c: the "postgres" backend's streaming loaders, history and
 * suspicious pages, and pruning of peers and applied segment ids.
 *
 * Owns: the SELECTs that stream users, torrents, the whitelist, snatches
 * and peers to the loader's callbacks (rows that break the store.h contract
 * are skipped with a warning), a user's history and suspicious uploads
 * page by page, and the DELETEs of the prunes.
 * Not here: the connection, the runners and the schema (pg.c), the books
 * (pg_apply.c).
 */
#include "store/pg_admin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* ---- loaders ------------------------------------------------------------- */

/* The caller's callback for one load: exactly one of the fn fields is set. */
struct pg_sink {
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
static bool pg_id_ok(int64_t id)
{
    return id >= 0 && id < (int64_t)UINT32_MAX;
}

static uint32_t pg_mult(const PGresult *r, int col)
{
    return pg_u32(r, 0, col, MK_MULT_MAX);
}

static int pg_user_row(const PGresult *r, void *arg)
{
    const struct pg_sink *sink = arg;
    int64_t id = pg_int(r, 0, 0);
    const char *pk = PQgetvalue(r, 0, 1);
    size_t len = (size_t)PQgetlength(r, 0, 1);
    if (!pg_id_ok(id)) {
        mk_log(MK_LOG_WARN, "store.pg", "users row %" PRId64 " skipped: id out of range", id);
        return 0;
    }
    if (len == 0 || len > MK_PASSKEY_MAX) {
        mk_log(MK_LOG_WARN, "store.pg", "users row %" PRId64 " skipped: passkey is %zu bytes (1..%d)",
               id, len, MK_PASSKEY_MAX);
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)pk[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
            mk_log(MK_LOG_WARN, "store.pg",
                   "users row %" PRId64 " skipped: passkey has a character outside [A-Za-z0-9]", id);
            return 0;
        }
    }
    struct user_row row = {
        .id = (uint32_t)id,
        .enabled = pg_bool(r, 0, 2),
        .can_download = pg_bool(r, 0, 3),
        .has_mults = true,
        .class_up = pg_mult(r, 4),
        .class_down = pg_mult(r, 5),
        .personal_up = pg_mult(r, 6),
        .personal_down = pg_mult(r, 7),
    };
    memcpy(row.passkey, pk, len);
    row.passkey[len] = '\0';
    return sink->user(&row, sink->arg);
}

static int pg_torrent_row(const PGresult *r, void *arg)
{
    const struct pg_sink *sink = arg;
    int64_t id = pg_int(r, 0, 0);
    if (!pg_id_ok(id)) {
        mk_log(MK_LOG_WARN, "store.pg", "torrents row %" PRId64 " skipped: id out of range", id);
        return 0;
    }
    if (PQgetlength(r, 0, 1) != 20) {
        mk_log(MK_LOG_WARN, "store.pg",
               "torrents row %" PRId64 " skipped: info_hash is %d bytes, not 20", id,
               PQgetlength(r, 0, 1));
        return 0;
    }
    struct torrent_row row = {
        .id = (uint32_t)id,
        .enabled = pg_bool(r, 0, 2),
        .deleted = pg_bool(r, 0, 3),
        .snatches = pg_u32(r, 0, 5, UINT32_MAX),
        .has_mults = true,
        .freeleech = pg_bool(r, 0, 6),
        .up_mult = pg_mult(r, 7),
        .down_mult = pg_mult(r, 8),
        .size = pg_u64(r, 0, 9),
    };
    memcpy(row.info_hash, PQgetvalue(r, 0, 1), 20);
    if (pg_text(r, 0, 4, row.reason, sizeof(row.reason))) {
        mk_log(MK_LOG_WARN, "store.pg", "torrents row %" PRId64 ": deleted_reason is %d bytes, cut to %zu",
               id, PQgetlength(r, 0, 4), strlen(row.reason));
    }
    return sink->torrent(&row, sink->arg);
}

static int pg_whitelist_row(const PGresult *r, void *arg)
{
    const struct pg_sink *sink = arg;
    int plen = PQgetlength(r, 0, 0);
    if (plen <= 0 || plen > MK_PREFIX_MAX) {
        mk_log(MK_LOG_WARN, "store.pg", "whitelist row skipped: prefix is %d bytes (1..%d)", plen,
               MK_PREFIX_MAX);
        return 0;
    }
    struct whitelist_row row = {.prefix_len = (uint8_t)plen};
    memcpy(row.prefix, PQgetvalue(r, 0, 0), (size_t)plen);
    if (pg_text(r, 0, 1, row.name, sizeof(row.name))) {
        mk_log(MK_LOG_WARN, "store.pg", "whitelist row: name is %d bytes, cut to %zu",
               PQgetlength(r, 0, 1), strlen(row.name));
    }
    return sink->whitelist(&row, sink->arg);
}

static int pg_snatch_row(const PGresult *r, void *arg)
{
    const struct pg_sink *sink = arg;
    int64_t uid = pg_int(r, 0, 0), tid = pg_int(r, 0, 1);
    if (!pg_id_ok(uid) || !pg_id_ok(tid)) {
        mk_log(MK_LOG_WARN, "store.pg",
               "snatches row (user_id %" PRId64 ", torrent_id %" PRId64 ") skipped: malformed",
               uid, tid);
        return 0;
    }
    struct snatch_row row = {
        .user_id = (uint32_t)uid,
        .torrent_id = (uint32_t)tid,
        .at = pg_int(r, 0, 2),
    };
    /* No torrent row here (gone, or kept in another backend): all zero. */
    if (PQgetlength(r, 0, 3) == 20) {
        memcpy(row.info_hash, PQgetvalue(r, 0, 3), 20);
    }
    return sink->snatch(&row, sink->arg);
}

static int pg_peer_row(const PGresult *r, void *arg)
{
    const struct pg_sink *sink = arg;
    int64_t tid = pg_int(r, 0, 0), uid = pg_int(r, 0, 1);
    int64_t family = pg_int(r, 0, 3), port = pg_int(r, 0, 5);
    int iplen = PQgetlength(r, 0, 4);
    if (!pg_id_ok(uid) || !pg_id_ok(tid) || PQgetlength(r, 0, 2) != 20 ||
        !((family == 4 && iplen == 4) || (family == 6 && iplen == 16)) || port < 1 ||
        port > 65535) {
        mk_log(MK_LOG_WARN, "store.pg",
               "peers row (torrent_id %" PRId64 ", user_id %" PRId64 ") skipped: malformed", tid,
               uid);
        return 0;
    }
    struct peer_row row;
    memset(&row, 0, sizeof(row));
    row.torrent_id = (uint32_t)tid;
    row.user_id = (uint32_t)uid;
    memcpy(row.peer_id, PQgetvalue(r, 0, 2), 20);
    row.family = (uint8_t)family;
    memcpy(row.ip, PQgetvalue(r, 0, 4), (size_t)iplen);
    row.port = (uint16_t)port;
    row.uploaded = pg_u64(r, 0, 6);
    row.downloaded = pg_u64(r, 0, 7);
    row.seeder = pg_bool(r, 0, 8);
    row.partial = pg_bool(r, 0, 9);
    row.last_seen = pg_int(r, 0, 10);
    if (PQgetlength(r, 0, 11) == 20) {
        memcpy(row.info_hash, PQgetvalue(r, 0, 11), 20);
    }
    row.node_id = (uint16_t)pg_u32(r, 0, 12, UINT16_MAX);
    return sink->peer(&row, sink->arg);
}

int pg_load_users(void *ctx, store_user_fn fn, void *arg, struct mk_errbuf *eb)
{
    /* The hot path needs the effective right: the user's own AND the class's. */
    return pg_stream(ctx,
                     "SELECT u.id, u.passkey, u.enabled,"
                     " u.can_download AND COALESCE(c.may_download, TRUE),"
                     " COALESCE(c.upload_multiplier, 1000), COALESCE(c.download_multiplier, 1000),"
                     " u.upload_multiplier, u.download_multiplier"
                     " FROM users u LEFT JOIN classes c ON c.id = u.class_id ORDER BY u.id",
                     NULL, "users", pg_user_row, &(struct pg_sink){.user = fn, .arg = arg}, eb);
}

int pg_load_torrents(void *ctx, store_torrent_fn fn, void *arg, struct mk_errbuf *eb)
{
    return pg_stream(ctx,
                     "SELECT id, info_hash, enabled, deleted, deleted_reason, snatches,"
                     " freeleech, upload_multiplier, download_multiplier, size"
                     " FROM torrents ORDER BY id",
                     NULL, "torrents", pg_torrent_row,
                     &(struct pg_sink){.torrent = fn, .arg = arg}, eb);
}

int pg_load_whitelist(void *ctx, store_whitelist_fn fn, void *arg, struct mk_errbuf *eb)
{
    return pg_stream(ctx, "SELECT prefix, name FROM whitelist ORDER BY prefix", NULL,
                     "whitelist", pg_whitelist_row,
                     &(struct pg_sink){.whitelist = fn, .arg = arg}, eb);
}

int pg_load_snatches(void *ctx, store_snatch_fn fn, void *arg, struct mk_errbuf *eb)
{
    /* The join drops snatches of torrents that are gone. */
    return pg_stream(ctx,
                     "SELECT s.user_id, s.torrent_id, s.at, t.info_hash"
                     " FROM snatches s LEFT JOIN torrents t ON t.id = s.torrent_id"
                     " ORDER BY s.torrent_id, s.user_id",
                     NULL, "snatches", pg_snatch_row,
                     &(struct pg_sink){.snatch = fn, .arg = arg}, eb);
}

int pg_load_peers(void *ctx, int64_t seen_since, store_peer_fn fn, void *arg,
                  struct mk_errbuf *eb)
{
    struct pg_params p = {0};
    pg_param_int(&p, seen_since);
    return pg_stream(ctx,
                     "SELECT p.torrent_id, p.user_id, p.peer_id, p.family, p.ip, p.port,"
                     " p.uploaded, p.downloaded, p.seeder, p.partial, p.last_seen, t.info_hash,"
                     " p.node_id FROM peers p LEFT JOIN torrents t ON t.id = p.torrent_id"
                     " WHERE p.last_seen >= $1 AND NOT p.gone",
                     &p, "peers", pg_peer_row, &(struct pg_sink){.peer = fn, .arg = arg}, eb);
}

int pg_prune_peers(void *ctx, int64_t seen_before, struct mk_errbuf *eb)
{
    struct pg_params p = {0};
    pg_param_int(&p, seen_before);
    return pg_run(ctx, "DELETE FROM peers WHERE last_seen < $1", &p, NULL, eb);
}

/* boot holds the unsigned id's bits: >> is arithmetic, hence the mask. */
int pg_prune_applied(void *ctx, int64_t applied_before, uint16_t node,
                     struct mk_errbuf *eb)
{
    struct pg_params p = {0};
    pg_param_int(&p, applied_before);
    pg_param_int(&p, node);
    return pg_run(ctx,
                  "DELETE FROM journal_applied WHERE applied_at < $1"
                  " AND ($2::int8 = 0 OR ((boot >> 48) & 65535) = $2::int8)",
                  &p, NULL, eb);
}

static int pg_history_row(const PGresult *r, void *arg)
{
    const struct pg_sink *sink = arg;
    struct history_row row;
    memset(&row, 0, sizeof(row));
    row.torrent_id = pg_u32(r, 0, 0, UINT32_MAX);
    if (PQgetlength(r, 0, 1) == 20) {
        memcpy(row.info_hash, PQgetvalue(r, 0, 1), 20);
    }
    uint64_t *u64[] = {&row.size, &row.uploaded, &row.downloaded, &row.raw_uploaded,
                       &row.raw_downloaded, &row.seed_time, &row.leech_time, &row.announces};
    for (int i = 0; i < 8; i++) {
        *u64[i] = pg_u64(r, 0, 2 + i);
    }
    row.first_announce = pg_int(r, 0, 10);
    row.last_announce = pg_int(r, 0, 11);
    row.completed_at = pg_int(r, 0, 12);
    return sink->history(&row, sink->arg);
}

/* A page of one user's rows and how many there are, read in one snapshot
 * so that the count and the page agree. count_sql takes $1 (the user);
 * page_sql $1, $2 (limit) and $3 (offset). */
static int pg_user_page(struct pg_store *s, uint32_t user_id, uint64_t offset, uint32_t limit,
                        const char *count_sql, const char *page_sql, const char *what,
                        pg_row_fn row, struct pg_sink *sink, uint64_t *total,
                        struct mk_errbuf *eb)
{
    int err = pg_begin(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", eb);
    if (err < 0) {
        return err;
    }
    struct pg_params p = {0};
    pg_param_int(&p, user_id);
    PGresult *r = NULL;
    err = pg_run(s, count_sql, &p, &r, eb);
    if (err == 0) {
        *total = pg_u64(r, 0, 0);
        PQclear(r);
        pg_param_int(&p, limit);
        pg_param_int(&p, offset > INT64_MAX ? INT64_MAX : (int64_t)offset);
        err = pg_stream(s, page_sql, &p, what, row, sink, eb);
    }
    return pg_end(s, err, eb);
}

int pg_user_history(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
                    store_history_fn fn, void *arg, uint64_t *total, struct mk_errbuf *eb)
{
    return pg_user_page(ctx, user_id, offset, limit,
                        "SELECT count(*) FROM user_torrents WHERE user_id = $1",
                        "SELECT h.torrent_id, t.info_hash, COALESCE(t.size, 0), h.uploaded,"
                        " h.downloaded, h.raw_uploaded, h.raw_downloaded, h.seed_time,"
                        " h.leech_time, h.announces, h.first_announce, h.last_announce,"
                        " COALESCE(h.completed_at, 0)"
                        " FROM user_torrents h LEFT JOIN torrents t ON t.id = h.torrent_id"
                        " WHERE h.user_id = $1 ORDER BY h.last_announce DESC, h.torrent_id"
                        " LIMIT $2 OFFSET $3",
                        "user_torrents", pg_history_row,
                        &(struct pg_sink){.history = fn, .arg = arg}, total, eb);
}

static int pg_suspicious_row(const PGresult *r, void *arg)
{
    const struct pg_sink *sink = arg;
    struct suspicious_row row;
    memset(&row, 0, sizeof(row));
    if (PQgetlength(r, 0, 0) == 20) {
        memcpy(row.info_hash, PQgetvalue(r, 0, 0), 20);
    }
    row.at = pg_int(r, 0, 1);
    row.uploaded = pg_u64(r, 0, 2);
    pg_text(r, 0, 3, row.reason, sizeof(row.reason));
    row.torrent_id = (uint32_t)pg_int(r, 0, 4);
    return sink->suspicious(&row, sink->arg);
}

int pg_user_suspicious(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
                       store_suspicious_fn fn, void *arg, uint64_t *total,
                       struct mk_errbuf *eb)
{
    return pg_user_page(ctx, user_id, offset, limit,
                        "SELECT count(*) FROM suspicious WHERE user_id = $1",
                        "SELECT t.info_hash, x.at, x.uploaded, x.reason, x.torrent_id FROM suspicious x"
                        " LEFT JOIN torrents t ON t.id = x.torrent_id WHERE x.user_id = $1"
                        " ORDER BY x.at DESC, x.id DESC LIMIT $2 OFFSET $3",
                        "suspicious", pg_suspicious_row,
                        &(struct pg_sink){.suspicious = fn, .arg = arg}, total, eb);
}

