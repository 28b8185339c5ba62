/* store/sqlite_admin.h: the sqlite backend's MK_STORE_V2 methods (the admin API's
 * reads and writes), for store/sqlite.c's ops table only.
 *
 * Each takes the backend's context, a struct sqlite_store (sqlite_int.h);
 * contracts are those of struct store_ops in store.h.
 */
#ifndef MIKA_STORE_SQLITE_ADMIN_H
#define MIKA_STORE_SQLITE_ADMIN_H

#include "store/store.h"

int sqlite_admin_ping(void *ctx, struct mk_errbuf *eb);
int sqlite_admin_user_get(void *ctx, uint32_t id, struct user_rec *out, struct mk_errbuf *eb);
int sqlite_admin_user_get_by_passkey(void *ctx, const char *passkey, struct user_rec *out,
                                     struct mk_errbuf *eb);
int sqlite_admin_user_list(void *ctx, const struct user_filter *f, store_user_rec_fn fn,
                           void *arg, uint64_t *total, struct mk_errbuf *eb);
int sqlite_admin_user_insert(void *ctx, struct user_rec *rec, bool has_id, struct mk_errbuf *eb);
int sqlite_admin_user_update(void *ctx, const struct user_rec *rec, struct mk_errbuf *eb);
int sqlite_admin_user_delete(void *ctx, uint32_t id, struct mk_errbuf *eb);
int sqlite_admin_torrent_get_by_id(void *ctx, uint32_t id, struct torrent_rec *out,
                                   struct mk_errbuf *eb);
int sqlite_admin_torrent_get(void *ctx, const uint8_t info_hash[20], struct torrent_rec *out,
                             struct mk_errbuf *eb);
int sqlite_admin_torrent_insert(void *ctx, struct torrent_rec *rec, struct mk_errbuf *eb);
int sqlite_admin_torrent_update(void *ctx, const struct torrent_rec *rec, struct mk_errbuf *eb);
int sqlite_admin_whitelist_insert(void *ctx, const struct whitelist_row *row,
                                  struct mk_errbuf *eb);
int sqlite_admin_whitelist_delete(void *ctx, const uint8_t *prefix, size_t len,
                                  struct whitelist_row *out, struct mk_errbuf *eb);
int sqlite_admin_class_list(void *ctx, store_class_fn fn, void *arg, struct mk_errbuf *eb);
int sqlite_admin_class_get(void *ctx, uint32_t id, struct class_row *out, struct mk_errbuf *eb);
int sqlite_admin_class_insert(void *ctx, struct class_row *row, bool has_id,
                              struct mk_errbuf *eb);
int sqlite_admin_class_update(void *ctx, const struct class_row *row, struct mk_errbuf *eb);
int sqlite_admin_class_delete(void *ctx, uint32_t id, struct mk_errbuf *eb);
int sqlite_admin_settings_load(void *ctx, store_setting_fn fn, void *arg, struct mk_errbuf *eb);
int sqlite_admin_settings_put(void *ctx, const struct setting_row *rows, size_t n,
                              struct mk_errbuf *eb);

#endif /* MIKA_STORE_SQLITE_ADMIN_H */
