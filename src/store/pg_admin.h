/* store/pg_admin.h: what store/pg.c shares with store/pg_admin.c,
 * store/pg_apply.c, store/pg_load.c, store/pg_notify.c and store/pg_value.c.
 *
 * Owns: the postgres backend's query helpers (parameters, prepared-statement
 * execution with error mapping and reconnection, streaming in single-row
 * mode, binary result readers) and the methods the other files implement
 * for pg.c's ops table. Nothing outside store/pg*.c includes it.
 *
 * Results are always in binary format: integers arrive as big-endian
 * 2/4/8-byte values (pg_int reads any of them), booleans as one byte, text
 * and bytea as their raw bytes.
 */
#ifndef MIKA_STORE_PG_ADMIN_H
#define MIKA_STORE_PG_ADMIN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

struct pg_store; /* store/pg.c */

#define PG_PARAMS_MAX 16

/* Query parameters (pg_value.c): integers and text as text, bytea as binary. Values
 * point into num[] or at the caller's buffers, which must outlive the call. */
struct pg_params {
    int n;
    const char *val[PG_PARAMS_MAX];
    int len[PG_PARAMS_MAX];
    int fmt[PG_PARAMS_MAX];
    char num[PG_PARAMS_MAX][24];
};

void pg_param_int(struct pg_params *p, int64_t v);
void pg_param_bool(struct pg_params *p, bool v);
void pg_param_text(struct pg_params *p, const char *s); /* "" stays "" */
void pg_param_text_or_null(struct pg_params *p, const char *s); /* "" becomes NULL */
void pg_param_bytes(struct pg_params *p, const void *b, size_t len);
void pg_param_null(struct pg_params *p);

/* Runs sql (a string literal: prepared once per connection, keyed by its
 * address) with p. 0 and, when out is set, the result (caller PQclears);
 * else an mk_err: MK_EUNAVAIL when the server is down, busy or the
 * connection was lost (dropped, so the next call reconnects), MK_EEXIST
 * naming the column of a unique violation, MK_EIO otherwise. */
int pg_run(struct pg_store *s, const char *sql, const struct pg_params *p, PGresult **out,
           struct mk_errbuf *eb);
/* As pg_run; *rows gets how many rows the command changed. */
int pg_run_count(struct pg_store *s, const char *sql, const struct pg_params *p, long *rows,
                 struct mk_errbuf *eb);
/* A transaction: begin_sql is "BEGIN" or a variant; pg_end commits when err
 * is 0, else rolls back, and returns err or the commit's error. */
int pg_begin(struct pg_store *s, const char *begin_sql, struct mk_errbuf *eb);
int pg_end(struct pg_store *s, int err, struct mk_errbuf *eb);

/* Streams sql's rows one at a time (single-row mode: never the whole result
 * in memory) through fn(result, arg), whose result holds one row (row 0).
 * A negative return from fn stops the stream and is returned as is. */
typedef int (*pg_row_fn)(const PGresult *r, void *arg);
int pg_stream(struct pg_store *s, const char *sql, const struct pg_params *p, const char *what,
              pg_row_fn fn, void *arg, struct mk_errbuf *eb);

/* Runs sql (no parameters, not prepared: LISTEN, DDL) on a healthy idle
 * connection, connecting first if needed. */
int pg_exec(struct pg_store *s, const char *sql, struct mk_errbuf *eb);
/* The connection (NULL when there is none); pg_disconnect drops it, so the
 * next call reconnects. *pg_listening is false on every new connection. */
PGconn *pg_conn(struct pg_store *s);
void pg_disconnect(struct pg_store *s);
bool *pg_listening(struct pg_store *s);

/* ---- clusters (pg_notify.c); contracts in store.h ------------------------ */

int pg_notify_publish(void *ctx, const char *payload, struct mk_errbuf *eb);
int pg_notify_listen(void *ctx, int timeout_ms, store_change_fn fn, void *arg,
                     struct mk_errbuf *eb);
int pg_notify_counts_put(void *ctx, uint16_t node, bool reset, const struct swarm_count_row *rows,
                         size_t n, uint32_t ttl_s, struct mk_errbuf *eb);
int pg_notify_counts_load(void *ctx, uint16_t self, uint32_t ttl_s, store_count_fn fn, void *arg,
                          struct mk_errbuf *eb);

/* Binary result readers (pg_value.c); NULL reads as 0, "" or false. */
bool pg_isnull(const PGresult *r, int row, int col);
int64_t pg_int(const PGresult *r, int row, int col);
uint64_t pg_u64(const PGresult *r, int row, int col); /* negatives read as 0 */
uint32_t pg_u32(const PGresult *r, int row, int col, uint32_t max); /* clamped to 0..max */
bool pg_bool(const PGresult *r, int row, int col);
/* Copies a text column into out (cap bytes with the NUL), cut at a UTF-8
 * boundary; true if it had to cut. */
bool pg_text(const PGresult *r, int row, int col, char *out, size_t cap);

/* ---- the books (pg_apply.c); contracts in store.h ----------------------- */

int pg_apply_rows(void *ctx, const struct acct_delta *rows, size_t n, struct mk_errbuf *eb);
int pg_apply_segment(void *ctx, const struct store_segment_id *id, const struct acct_delta *rows,
                     size_t n, struct mk_errbuf *eb);
int pg_apply_segments(void *ctx, const struct store_segment_id *ids, size_t nids,
                      const struct acct_delta *rows, size_t n, struct mk_errbuf *eb);

/* ---- the admin API's methods (pg_admin.c); contracts in store.h --------- */

/* ---- pg_load.c: the ops table's loaders, pages and prunes (store.h) ---- */
int pg_load_users(void *ctx, store_user_fn fn, void *arg, struct mk_errbuf *eb);
int pg_load_torrents(void *ctx, store_torrent_fn fn, void *arg, struct mk_errbuf *eb);
int pg_load_whitelist(void *ctx, store_whitelist_fn fn, void *arg, struct mk_errbuf *eb);
int pg_load_snatches(void *ctx, store_snatch_fn fn, void *arg, struct mk_errbuf *eb);
int pg_load_peers(void *ctx, int64_t seen_since, store_peer_fn fn, void *arg,
                  struct mk_errbuf *eb);
int pg_prune_peers(void *ctx, int64_t seen_before, struct mk_errbuf *eb);
int pg_prune_applied(void *ctx, int64_t applied_before, uint16_t node, struct mk_errbuf *eb);
int pg_user_history(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
                    store_history_fn fn, void *arg, uint64_t *total, struct mk_errbuf *eb);
int pg_user_suspicious(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
                       store_suspicious_fn fn, void *arg, uint64_t *total,
                       struct mk_errbuf *eb);

int pg_admin_ping(void *ctx, struct mk_errbuf *eb);
int pg_admin_user_get(void *ctx, uint32_t id, struct user_rec *out, struct mk_errbuf *eb);
int pg_admin_user_get_by_passkey(void *ctx, const char *passkey, struct user_rec *out,
                                 struct mk_errbuf *eb);
int pg_admin_user_list(void *ctx, const struct user_filter *f, store_user_rec_fn fn, void *arg,
                       uint64_t *total, struct mk_errbuf *eb);
int pg_admin_user_insert(void *ctx, struct user_rec *rec, bool has_id, struct mk_errbuf *eb);
int pg_admin_user_update(void *ctx, const struct user_rec *rec, struct mk_errbuf *eb);
int pg_admin_user_delete(void *ctx, uint32_t id, struct mk_errbuf *eb);
int pg_admin_torrent_get(void *ctx, const uint8_t info_hash[20], struct torrent_rec *out,
                         struct mk_errbuf *eb);
int pg_admin_torrent_insert(void *ctx, struct torrent_rec *rec, struct mk_errbuf *eb);
int pg_admin_torrent_update(void *ctx, const struct torrent_rec *rec, struct mk_errbuf *eb);
int pg_admin_whitelist_insert(void *ctx, const struct whitelist_row *row, struct mk_errbuf *eb);
int pg_admin_whitelist_delete(void *ctx, const uint8_t *prefix, size_t len,
                              struct whitelist_row *out, struct mk_errbuf *eb);
int pg_admin_class_list(void *ctx, store_class_fn fn, void *arg, struct mk_errbuf *eb);
int pg_admin_class_get(void *ctx, uint32_t id, struct class_row *out, struct mk_errbuf *eb);
int pg_admin_class_insert(void *ctx, struct class_row *row, bool has_id, struct mk_errbuf *eb);
int pg_admin_class_update(void *ctx, const struct class_row *row, struct mk_errbuf *eb);
int pg_admin_class_delete(void *ctx, uint32_t id, struct mk_errbuf *eb);
int pg_admin_settings_load(void *ctx, store_setting_fn fn, void *arg, struct mk_errbuf *eb);
int pg_admin_settings_put(void *ctx, const struct setting_row *rows, size_t n,
                          struct mk_errbuf *eb);

#endif /* MIKA_STORE_PG_ADMIN_H */
