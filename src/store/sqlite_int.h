/* store/sqlite_int.h: what the sqlite backend's files share, and nothing
 * else includes.
 *
 * Owns: the context of an open store, the error and statement helpers of
 * sqlite.c, and the ops of sqlite_load.c (their contracts are store.h's).
 * sqlite_load.c and sqlite_admin.c reach the connection through struct
 * sqlite_store and fail through sqlite_fail.
 */
#ifndef MIKA_STORE_SQLITE_INT_H
#define MIKA_STORE_SQLITE_INT_H

#include <sqlite3.h>
#include <stdint.h>

#include "store/sqlite_apply.h"
#include "store/store.h"
#include "util/err.h"

struct sqlite_store {
    sqlite3 *db;
    struct sqlite_apply ap; /* the books' statements (sqlite_apply.c) */
};

/* sqlite.c: rc as an mk_err with SQLite's message; one statement that
 * answers at most one integer (*out untouched if none); one statement. */
int sqlite_fail(sqlite3 *db, int rc, struct mk_errbuf *eb, const char *what);
int sqlite_get_int(sqlite3 *db, const char *sql, int64_t *out, struct mk_errbuf *eb);
int sqlite_exec(sqlite3 *db, const char *sql, struct mk_errbuf *eb);
/* sqlite.c: the schema at version target (at most the current one), by
 * the migrations this mika carries; opening asks for the current one. */
int sqlite_migrate_to(sqlite3 *db, int target, struct mk_errbuf *eb);

/* sqlite_load.c */
int sqlite_load_users(void *ctx, store_user_fn fn, void *arg, struct mk_errbuf *eb);
int sqlite_load_torrents(void *ctx, store_torrent_fn fn, void *arg, struct mk_errbuf *eb);
int sqlite_load_whitelist(void *ctx, store_whitelist_fn fn, void *arg, struct mk_errbuf *eb);
int sqlite_load_snatches(void *ctx, store_snatch_fn fn, void *arg, struct mk_errbuf *eb);
int sqlite_load_peers(void *ctx, int64_t seen_since, store_peer_fn fn, void *arg,
                      struct mk_errbuf *eb);
int sqlite_user_history(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
                        store_history_fn fn, void *arg, uint64_t *total, struct mk_errbuf *eb);
int sqlite_user_suspicious(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
                           store_suspicious_fn fn, void *arg, uint64_t *total,
                           struct mk_errbuf *eb);
int sqlite_load_tokens(void *ctx, uint32_t user_id, int64_t now, store_token_fn fn, void *arg,
                       struct mk_errbuf *eb);
int sqlite_token_put(void *ctx, const struct token_row *row, struct mk_errbuf *eb);
int sqlite_token_delete(void *ctx, const struct token_row *key, struct mk_errbuf *eb);
int sqlite_prune_peers(void *ctx, int64_t seen_before, struct mk_errbuf *eb);
int sqlite_prune_applied(void *ctx, int64_t applied_before, uint16_t node, struct mk_errbuf *eb);

#endif /* MIKA_STORE_SQLITE_INT_H */
