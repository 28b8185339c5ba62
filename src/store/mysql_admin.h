/* store/mysql_admin.h: what the files of the mysql backend share.
 *
 * Owns: the declarations of the statement builder, row readers and dsn
 * parser (mysql_sql.c: SQL text with every value written as a literal that
 * cannot break out of it), running statements with error mapping and
 * reconnection and streaming rows (mysql.c: mysql_use_result, never the
 * whole result in memory), the loaders (mysql_load.c), apply()
 * (mysql_apply.c) and the admin API's methods (mysql_admin.c) that mysql.c
 * lists in its ops table. Nothing outside store/mysql*.c includes it.
 *
 * Names take my_, not the file's mysql_: that prefix is the client
 * library's (mysql_close, mysql_store_result, ...).
 *
 * Values: integers are printed, text goes as _utf8mb4 X'...' and bytes as
 * X'...' (hex: no quoting, no escaping, whatever the bytes); results arrive
 * as text (the client protocol's text rows), NULL as a NULL pointer.
 */
#ifndef MIKA_STORE_MYSQL_ADMIN_H
#define MIKA_STORE_MYSQL_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct my_store; /* store/mysql.c */

/* Bounds one statement: well under max_allowed_packet (4 MB on MySQL 5.7). */
#define MY_SQL_MAX (1024 * 1024)

/* A statement being written: a heap buffer growing up to MY_SQL_MAX, past
 * which err becomes MK_ELIMIT (and MK_ENOMEM when malloc fails); appends
 * after an error do nothing, so callers check once, before running it. */
struct my_sql {
    char *p;
    size_t len, cap;
    int err;
};

void my_sql_free(struct my_sql *q);
void my_sql_reset(struct my_sql *q);               /* empty, keeping the buffer */
void my_sqlf(struct my_sql *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void my_sql_text(struct my_sql *q, const char *s);   /* a utf8mb4 string literal */
void my_sql_text_or_null(struct my_sql *q, const char *s); /* "" becomes NULL */
void my_sql_bytes(struct my_sql *q, const void *b, size_t len); /* a binary literal */

/* mysql://user:pass@host:port/db, percent-decoded; user and pass may be NULL. */
struct my_dsn {
    char *user, *pass, *host, *db;
    unsigned port; /* 3306 when the dsn names none */
};

/* Parses dsn into d (my_dsn_free frees it). MK_EINVAL names what is wrong
 * and never repeats the dsn, which holds the password. */
int my_dsn_parse(const char *dsn, struct my_dsn *d, struct mk_errbuf *eb);
void my_dsn_free(struct my_dsn *d);

/* One streamed row: v[i] is NULL for SQL NULL, else len[i] bytes (NUL-terminated). */
struct my_row {
    char **v;
    unsigned long *len;
    unsigned n;
};
typedef int (*my_row_fn)(const struct my_row *r, void *arg);

/* Runs q (or sql when q is NULL). 0 and, with affected, the rows it changed
 * (an ON DUPLICATE KEY UPDATE that changed nothing counts 0); else an
 * mk_err: MK_EUNAVAIL when the server is down, busy, a lock wait timed out
 * or the connection was lost (dropped, so the next call reconnects),
 * MK_EEXIST naming the column of a duplicate key, MK_EIO otherwise. */
int my_exec(struct my_store *s, const struct my_sql *q, const char *sql, uint64_t *affected,
            struct mk_errbuf *eb);
/* Streams the rows of q (or sql) through fn, one at a time, read off the
 * socket as they come. A negative return from fn stops the stream (the
 * rest is read and dropped) and is returned; what names the rows in eb. */
int my_stream(struct my_store *s, const struct my_sql *q, const char *sql, const char *what,
              my_row_fn fn, void *arg, struct mk_errbuf *eb);
/* As my_exec for sql, a string literal with n (at most MY_INTS_MAX) integer
 * parameters v: prepared once per connection (keyed by sql's address), then
 * only the values cross the wire. For the statements run once per row. */
#define MY_INTS_MAX 8
int my_exec_ints(struct my_store *s, const char *sql, const int64_t *v, unsigned n,
                 uint64_t *affected, struct mk_errbuf *eb);
/* As my_exec for an UPDATE: *matched gets the rows its WHERE found, changed
 * or not (MySQL's affected rows leave out rows already holding the values). */
int my_exec_update(struct my_store *s, const struct my_sql *q, uint64_t *matched,
                   struct mk_errbuf *eb);
/* As my_stream for a query of at most one row: *found says whether it had one. */
int my_one(struct my_store *s, const struct my_sql *q, const char *sql, my_row_fn fn, void *arg,
           bool *found, struct mk_errbuf *eb);
/* True when the server reads `SELECT ... UNION ALL VALUES (...), (...)` (a
 * table value constructor: MariaDB 10.3.3+): many rows for a derived table
 * at a fraction of the cost of a SELECT per row. */
bool my_has_values(const struct my_store *s);
/* LAST_INSERT_ID() of this connection's last insert. */
uint64_t my_insert_id(struct my_store *s);
/* A transaction: begin_sql is "START TRANSACTION" or a variant; my_end
 * commits when err is 0, else rolls back, and returns err or the commit's. */
int my_begin(struct my_store *s, const char *begin_sql, struct mk_errbuf *eb);
int my_end(struct my_store *s, int err, struct mk_errbuf *eb);

/* Text readers; NULL and garbage read as 0, "" or false. */
bool my_col_null(const struct my_row *r, unsigned col);
int64_t my_col_int(const struct my_row *r, unsigned col);
uint64_t my_col_u64(const struct my_row *r, unsigned col);        /* negatives read as 0 */
uint32_t my_col_u32(const struct my_row *r, unsigned col, uint32_t max); /* clamped to 0..max */
bool my_col_bool(const struct my_row *r, unsigned col);
/* Copies a text column into out (cap bytes with the NUL), cut at a UTF-8
 * boundary; true if it had to cut. */
bool my_col_text(const struct my_row *r, unsigned col, char *out, size_t cap);

/* ---- loaders (mysql_load.c) and apply (mysql_apply.c); contracts in store.h */

int my_load_users(void *ctx, store_user_fn fn, void *arg, struct mk_errbuf *eb);
int my_load_torrents(void *ctx, store_torrent_fn fn, void *arg, struct mk_errbuf *eb);
int my_load_whitelist(void *ctx, store_whitelist_fn fn, void *arg, struct mk_errbuf *eb);
int my_load_snatches(void *ctx, store_snatch_fn fn, void *arg, struct mk_errbuf *eb);
int my_load_peers(void *ctx, int64_t seen_since, store_peer_fn fn, void *arg,
                  struct mk_errbuf *eb);
int my_prune_peers(void *ctx, int64_t seen_before, struct mk_errbuf *eb);
int my_prune_applied(void *ctx, int64_t applied_before, uint16_t node, struct mk_errbuf *eb);
int my_user_history(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
                    store_history_fn fn, void *arg, uint64_t *total, struct mk_errbuf *eb);
int my_user_suspicious(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
                       store_suspicious_fn fn, void *arg, uint64_t *total, struct mk_errbuf *eb);
int my_apply(void *ctx, const struct acct_delta *rows, size_t n, struct mk_errbuf *eb);
int my_apply_segment(void *ctx, const struct store_segment_id *id, const struct acct_delta *rows,
                     size_t n, struct mk_errbuf *eb);
int my_apply_segments(void *ctx, const struct store_segment_id *ids, size_t nids,
                      const struct acct_delta *rows, size_t n, struct mk_errbuf *eb);

/* ---- the admin API's methods (mysql_admin.c); contracts in store.h ------ */

int my_admin_ping(void *ctx, struct mk_errbuf *eb);
int my_admin_user_get(void *ctx, uint32_t id, struct user_rec *out, struct mk_errbuf *eb);
int my_admin_user_get_by_passkey(void *ctx, const char *passkey, struct user_rec *out,
                                 struct mk_errbuf *eb);
int my_admin_user_list(void *ctx, const struct user_filter *f, store_user_rec_fn fn, void *arg,
                       uint64_t *total, struct mk_errbuf *eb);
int my_admin_user_insert(void *ctx, struct user_rec *rec, bool has_id, struct mk_errbuf *eb);
int my_admin_user_update(void *ctx, const struct user_rec *rec, struct mk_errbuf *eb);
int my_admin_user_delete(void *ctx, uint32_t id, struct mk_errbuf *eb);
int my_admin_torrent_get(void *ctx, const uint8_t info_hash[20], struct torrent_rec *out,
                         struct mk_errbuf *eb);
int my_admin_torrent_get_by_id(void *ctx, uint32_t id, struct torrent_rec *out,
                               struct mk_errbuf *eb);
int my_admin_torrent_insert(void *ctx, struct torrent_rec *rec, struct mk_errbuf *eb);
int my_admin_torrent_update(void *ctx, const struct torrent_rec *rec, struct mk_errbuf *eb);
int my_admin_whitelist_insert(void *ctx, const struct whitelist_row *row, struct mk_errbuf *eb);
int my_admin_whitelist_delete(void *ctx, const uint8_t *prefix, size_t len,
                              struct whitelist_row *out, struct mk_errbuf *eb);
int my_admin_class_list(void *ctx, store_class_fn fn, void *arg, struct mk_errbuf *eb);
int my_admin_class_get(void *ctx, uint32_t id, struct class_row *out, struct mk_errbuf *eb);
int my_admin_class_insert(void *ctx, struct class_row *row, bool has_id, struct mk_errbuf *eb);
int my_admin_class_update(void *ctx, const struct class_row *row, struct mk_errbuf *eb);
int my_admin_class_delete(void *ctx, uint32_t id, struct mk_errbuf *eb);
int my_admin_settings_load(void *ctx, store_setting_fn fn, void *arg, struct mk_errbuf *eb);
int my_admin_settings_put(void *ctx, const struct setting_row *rows, size_t n,
                          struct mk_errbuf *eb);
int my_admin_load_tokens(void *ctx, uint32_t user_id, int64_t now, store_token_fn fn, void *arg,
                         struct mk_errbuf *eb);
int my_admin_token_put(void *ctx, const struct token_row *row, struct mk_errbuf *eb);
int my_admin_token_delete(void *ctx, const struct token_row *key, struct mk_errbuf *eb);

#endif /* MIKA_STORE_MYSQL_ADMIN_H */
