/* store/store.c: the backend registry and the store_* wrappers.
 *
 * Owns: finding a backend by name, the whitelist every backend is seeded
 * with, and the one layer every store call goes
 * through: it checks the interface version, answers MK_ENOTSUP for a method a
 * backend left NULL, and logs each failure with the backend and method names.
 * Not here: any backend (one file each: store/sqlite.c, store/pg.c, ...).
 * Invariant: callers never reach ops-> directly, so checks added here cover
 * every backend at once.
 */
#include "store/store.h"

#include <string.h>

#include "util/log.h"

static const struct store_ops *const store_backends[] = {
    &store_sqlite_ops,
    &store_memory_ops,
    &store_pg_ops,
    &store_mysql_ops,
    &store_redis_ops,
};

const struct store_client_prefix store_default_whitelist[] = {
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
const size_t store_default_whitelist_len =
    sizeof(store_default_whitelist) / sizeof(store_default_whitelist[0]);

const struct store_ops *store_find(const char *name)
{
    for (size_t i = 0; i < sizeof(store_backends) / sizeof(store_backends[0]); i++) {
        if (strcmp(store_backends[i]->name, name) == 0) {
            return store_backends[i];
        }
    }
    return NULL;
}

/* Logs a failed call (ENOTSUP is an answer, not a failure) and passes rc on. */
static int store_done(const struct store *st, const char *method, int rc,
                      const struct mk_errbuf *eb)
{
    if (rc < 0 && rc != MK_ENOTSUP) {
        mk_log(MK_LOG_WARN, "store", "%s.%s failed: %s: %s", st->ops->name, method,
               mk_err_name(rc), eb->msg);
    }
    return rc;
}

/* Checks that st is open and its backend has the method (has_method). */
static int store_can(const struct store *st, bool has_method, const char *method,
                     struct mk_errbuf *eb)
{
    if (!st->ops || !st->ctx) {
        return mk_fail(eb, MK_EINVAL, "store.%s: store is not open", method);
    }
    if (!has_method) {
        return mk_fail(eb, MK_ENOTSUP, "store %s has no %s", st->ops->name, method);
    }
    return 0;
}

int store_open(struct store *st, const char *backend, const struct store_cfg *cfg,
               struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    if (!eb) {
        eb = &local;
    }
    eb->msg[0] = '\0';
    st->ops = NULL;
    st->ctx = NULL;
    const struct store_ops *ops = store_find(backend);
    if (!ops) {
        return mk_fail(eb, MK_ENOTFOUND, "unknown store backend \"%s\"", backend);
    }
    /* Fields are only ever appended, so any version from V1 on has them. */
    if (ops->version < MK_STORE_V1 || !ops->open || !ops->close) {
        return mk_fail(eb, MK_ENOTSUP, "store %s: interface version %d, need %d", ops->name,
                       ops->version, MK_STORE_V1);
    }
    void *ctx = NULL;
    int rc = ops->open(&ctx, cfg, eb);
    if (rc < 0) {
        mk_log(MK_LOG_WARN, "store", "%s.open failed: %s: %s", ops->name, mk_err_name(rc),
               eb->msg);
        return rc;
    }
    st->ops = ops;
    st->ctx = ctx;
    return 0;
}

void store_close(struct store *st)
{
    if (st->ops && st->ctx) {
        st->ops->close(st->ctx);
    }
    st->ops = NULL;
    st->ctx = NULL;
}

int store_load_users(struct store *st, store_user_fn fn, void *arg, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can(st, st->ops && st->ops->load_users, "load_users", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done(st, "load_users", st->ops->load_users(st->ctx, fn, arg, eb), eb);
}

int store_load_torrents(struct store *st, store_torrent_fn fn, void *arg, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can(st, st->ops && st->ops->load_torrents, "load_torrents", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done(st, "load_torrents", st->ops->load_torrents(st->ctx, fn, arg, eb), eb);
}

int store_load_whitelist(struct store *st, store_whitelist_fn fn, void *arg, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can(st, st->ops && st->ops->load_whitelist, "load_whitelist", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done(st, "load_whitelist", st->ops->load_whitelist(st->ctx, fn, arg, eb), eb);
}

int store_load_snatches(struct store *st, store_snatch_fn fn, void *arg, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can(st, st->ops && st->ops->load_snatches, "load_snatches", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done(st, "load_snatches", st->ops->load_snatches(st->ctx, fn, arg, eb), eb);
}

int store_apply(struct store *st, const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can(st, st->ops && st->ops->apply, "apply", eb);
    if (rc < 0) {
        return rc;
    }
    if (n == 0) {
        return 0;
    }
    return store_done(st, "apply", st->ops->apply(st->ctx, rows, n, eb), eb);
}

int store_apply_segment(struct store *st, const struct store_segment_id *id,
                        const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can(st, st->ops && st->ops->apply_segment, "apply_segment", eb);
    if (rc < 0) {
        return rc;
    }
    rc = st->ops->apply_segment(st->ctx, id, rows, n, eb);
    /* Already applied is the expected answer to a replay, not a failure. */
    return rc == MK_EEXIST ? rc : store_done(st, "apply_segment", rc, eb);
}

int store_apply_segments(struct store *st, const struct store_segment_id *ids, size_t nids,
                         const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    bool has = st->ops && st->ops->version >= MK_STORE_V5 && st->ops->apply_segments;
    int rc = store_can(st, has, "apply_segments", eb);
    if (rc < 0) {
        return rc;
    }
    rc = st->ops->apply_segments(st->ctx, ids, nids, rows, n, eb);
    return rc == MK_EEXIST ? rc : store_done(st, "apply_segments", rc, eb);
}

uint32_t store_max_group_records(const struct store *st)
{
    return st->ops && st->ops->version >= MK_STORE_V6 ? st->ops->max_group_records : 0;
}

int store_prune_applied(struct store *st, int64_t applied_before, uint16_t node,
                        struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    bool has = st->ops && st->ops->version >= MK_STORE_V6 && st->ops->prune_applied;
    int rc = store_can(st, has, "prune_applied", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done(st, "prune_applied",
                      st->ops->prune_applied(st->ctx, applied_before, node, eb), eb);
}

/* ---- MK_STORE_V2: the admin API's methods ------------------------------- */

static int store_can_v2(const struct store *st, bool has_method, const char *method,
                        struct mk_errbuf *eb)
{
    if (st->ops && st->ops->version < MK_STORE_V2) {
        return mk_fail(eb, MK_ENOTSUP, "store %s: interface version %d has no %s",
                       st->ops->name, st->ops->version, method);
    }
    return store_can(st, has_method, method, eb);
}

/* Missing rows and duplicates are answers to the API's client, not failures. */
static int store_done_v2(const struct store *st, const char *method, int rc,
                         const struct mk_errbuf *eb)
{
    if (rc == MK_ENOTFOUND || rc == MK_EEXIST) {
        return rc;
    }
    return store_done(st, method, rc, eb);
}

int store_ping(struct store *st, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v2(st, st->ops && st->ops->ping, "ping", eb);
    return rc < 0 ? rc : store_done_v2(st, "ping", st->ops->ping(st->ctx, eb), eb);
}

int store_user_get(struct store *st, uint32_t id, struct user_rec *out, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v2(st, st->ops && st->ops->user_get, "user_get", eb);
    return rc < 0 ? rc : store_done_v2(st, "user_get", st->ops->user_get(st->ctx, id, out, eb), eb);
}

int store_user_get_by_passkey(struct store *st, const char *passkey, struct user_rec *out,
                              struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v2(st, st->ops && st->ops->user_get_by_passkey, "user_get_by_passkey", eb);
    if (rc < 0) {
        return rc;
    }
    rc = st->ops->user_get_by_passkey(st->ctx, passkey, out, eb);
    return store_done_v2(st, "user_get_by_passkey", rc, eb);
}

int store_user_list(struct store *st, const struct user_filter *f, store_user_rec_fn fn,
                    void *arg, uint64_t *total, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v2(st, st->ops && st->ops->user_list, "user_list", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done_v2(st, "user_list", st->ops->user_list(st->ctx, f, fn, arg, total, eb), eb);
}

int store_user_insert(struct store *st, struct user_rec *rec, bool has_id, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v2(st, st->ops && st->ops->user_insert, "user_insert", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done_v2(st, "user_insert", st->ops->user_insert(st->ctx, rec, has_id, eb), eb);
}

int store_user_update(struct store *st, const struct user_rec *rec, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v2(st, st->ops && st->ops->user_update, "user_update", eb);
    if (rc < 0) {
        return rc;
    }
    rc = st->ops->user_update(st->ctx, rec, eb);
    return store_done_v2(st, "user_update", rc, eb);
}

int store_user_delete(struct store *st, uint32_t id, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v2(st, st->ops && st->ops->user_delete, "user_delete", eb);
    if (rc < 0) {
        return rc;
    }
    rc = st->ops->user_delete(st->ctx, id, eb);
    return store_done_v2(st, "user_delete", rc, eb);
}

int store_torrent_get(struct store *st, const uint8_t info_hash[20], struct torrent_rec *out,
                      struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v2(st, st->ops && st->ops->torrent_get, "torrent_get", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done_v2(st, "torrent_get", st->ops->torrent_get(st->ctx, info_hash, out, eb), eb);
}

int store_torrent_insert(struct store *st, struct torrent_rec *rec, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v2(st, st->ops && st->ops->torrent_insert, "torrent_insert", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done_v2(st, "torrent_insert", st->ops->torrent_insert(st->ctx, rec, eb), eb);
}

int store_torrent_update(struct store *st, const struct torrent_rec *rec, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v2(st, st->ops && st->ops->torrent_update, "torrent_update", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done_v2(st, "torrent_update", st->ops->torrent_update(st->ctx, rec, eb), eb);
}

int store_whitelist_insert(struct store *st, const struct whitelist_row *row,
                           struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v2(st, st->ops && st->ops->whitelist_insert, "whitelist_insert", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done_v2(st, "whitelist_insert", st->ops->whitelist_insert(st->ctx, row, eb), eb);
}

int store_whitelist_delete(struct store *st, const uint8_t *prefix, size_t len,
                           struct whitelist_row *out, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v2(st, st->ops && st->ops->whitelist_delete, "whitelist_delete", eb);
    if (rc < 0) {
        return rc;
    }
    rc = st->ops->whitelist_delete(st->ctx, prefix, len, out, eb);
    return store_done_v2(st, "whitelist_delete", rc, eb);
}

int store_class_list(struct store *st, store_class_fn fn, void *arg, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v2(st, st->ops && st->ops->class_list, "class_list", eb);
    if (rc < 0) {
        return rc;
    }
    rc = st->ops->class_list(st->ctx, fn, arg, eb);
    return store_done_v2(st, "class_list", rc, eb);
}

int store_class_get(struct store *st, uint32_t id, struct class_row *out, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v2(st, st->ops && st->ops->class_get, "class_get", eb);
    if (rc < 0) {
        return rc;
    }
    rc = st->ops->class_get(st->ctx, id, out, eb);
    return store_done_v2(st, "class_get", rc, eb);
}

int store_class_insert(struct store *st, struct class_row *row, bool has_id,
                       struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v2(st, st->ops && st->ops->class_insert, "class_insert", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done_v2(st, "class_insert", st->ops->class_insert(st->ctx, row, has_id, eb), eb);
}

int store_class_update(struct store *st, const struct class_row *row, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v2(st, st->ops && st->ops->class_update, "class_update", eb);
    if (rc < 0) {
        return rc;
    }
    rc = st->ops->class_update(st->ctx, row, eb);
    return store_done_v2(st, "class_update", rc, eb);
}

int store_class_delete(struct store *st, uint32_t id, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v2(st, st->ops && st->ops->class_delete, "class_delete", eb);
    if (rc < 0) {
        return rc;
    }
    rc = st->ops->class_delete(st->ctx, id, eb);
    /* The default class and a class with users are refusals, not failures. */
    return rc == MK_EINVAL ? rc : store_done_v2(st, "class_delete", rc, eb);
}

int store_settings_load(struct store *st, store_setting_fn fn, void *arg, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v2(st, st->ops && st->ops->settings_load, "settings_load", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done_v2(st, "settings_load", st->ops->settings_load(st->ctx, fn, arg, eb), eb);
}

int store_settings_put(struct store *st, const struct setting_row *rows, size_t n,
                       struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v2(st, st->ops && st->ops->settings_put, "settings_put", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done_v2(st, "settings_put", st->ops->settings_put(st->ctx, rows, n, eb), eb);
}

/* ---- MK_STORE_V3: peers' baselines -------------------------------------- */

static int store_can_v3(const struct store *st, bool has_method, const char *method,
                        struct mk_errbuf *eb)
{
    if (st->ops && st->ops->version < MK_STORE_V3) {
        return mk_fail(eb, MK_ENOTSUP, "store %s: interface version %d has no %s",
                       st->ops->name, st->ops->version, method);
    }
    return store_can(st, has_method, method, eb);
}

int store_load_peers(struct store *st, int64_t seen_since, store_peer_fn fn, void *arg,
                     struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v3(st, st->ops && st->ops->load_peers, "load_peers", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done(st, "load_peers", st->ops->load_peers(st->ctx, seen_since, fn, arg, eb), eb);
}

int store_prune_peers(struct store *st, int64_t seen_before, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v3(st, st->ops && st->ops->prune_peers, "prune_peers", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done(st, "prune_peers", st->ops->prune_peers(st->ctx, seen_before, eb), eb);
}

int store_user_history(struct store *st, uint32_t user_id, uint64_t offset, uint32_t limit,
                       store_history_fn fn, void *arg, uint64_t *total, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v3(st, st->ops && st->ops->user_history, "user_history", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done(st, "user_history",
                      st->ops->user_history(st->ctx, user_id, offset, limit, fn, arg, total, eb),
                      eb);
}

int store_user_suspicious(struct store *st, uint32_t user_id, uint64_t offset, uint32_t limit,
                          store_suspicious_fn fn, void *arg, uint64_t *total,
                          struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v3(st, st->ops && st->ops->user_suspicious, "user_suspicious", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done(st, "user_suspicious",
                      st->ops->user_suspicious(st->ctx, user_id, offset, limit, fn, arg, total,
                                               eb),
                      eb);
}

int store_load_tokens(struct store *st, uint32_t user_id, int64_t now, store_token_fn fn,
                      void *arg, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v3(st, st->ops && st->ops->load_tokens, "load_tokens", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done(st, "load_tokens", st->ops->load_tokens(st->ctx, user_id, now, fn, arg, eb),
                      eb);
}

int store_token_put(struct store *st, const struct token_row *row, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v3(st, st->ops && st->ops->token_put, "token_put", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done_v2(st, "token_put", st->ops->token_put(st->ctx, row, eb), eb);
}

int store_token_delete(struct store *st, const struct token_row *key, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v3(st, st->ops && st->ops->token_delete, "token_delete", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done_v2(st, "token_delete", st->ops->token_delete(st->ctx, key, eb), eb);
}

int store_torrent_get_by_id(struct store *st, uint32_t id, struct torrent_rec *out,
                            struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v3(st, st->ops && st->ops->torrent_get_by_id, "torrent_get_by_id", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done_v2(st, "torrent_get_by_id", st->ops->torrent_get_by_id(st->ctx, id, out, eb),
                         eb);
}

/* ---- MK_STORE_V4: clusters ------------------------------------------------ */

static int store_can_v4(const struct store *st, bool has_method, const char *method,
                        struct mk_errbuf *eb)
{
    if (st->ops && st->ops->version < MK_STORE_V4) {
        return mk_fail(eb, MK_ENOTSUP, "store %s: interface version %d has no %s",
                       st->ops->name, st->ops->version, method);
    }
    return store_can(st, has_method, method, eb);
}

bool store_can_notify(const struct store *st)
{
    return st->ops && st->ops->version >= MK_STORE_V4 && st->ops->publish_change &&
           st->ops->listen_changes;
}

int store_publish_change(struct store *st, const char *payload, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v4(st, st->ops && st->ops->publish_change, "publish_change", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done(st, "publish_change", st->ops->publish_change(st->ctx, payload, eb), eb);
}

int store_listen_changes(struct store *st, int timeout_ms, store_change_fn fn, void *arg,
                         struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v4(st, st->ops && st->ops->listen_changes, "listen_changes", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done(st, "listen_changes",
                      st->ops->listen_changes(st->ctx, timeout_ms, fn, arg, eb), eb);
}

int store_counts_put(struct store *st, uint16_t node, bool reset,
                     const struct swarm_count_row *rows, size_t n, uint32_t ttl_s,
                     struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v4(st, st->ops && st->ops->counts_put, "counts_put", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done(st, "counts_put",
                      st->ops->counts_put(st->ctx, node, reset, rows, n, ttl_s, eb), eb);
}

int store_counts_load(struct store *st, uint16_t self, uint32_t ttl_s, store_count_fn fn,
                      void *arg, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can_v4(st, st->ops && st->ops->counts_load, "counts_load", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done(st, "counts_load",
                      st->ops->counts_load(st->ctx, self, ttl_s, fn, arg, eb), eb);
}
