/* store/redis_admin.h: what the files of the redis backend share.
 *
 * Owns: the redis backend's command helpers (argument lists, commands and
 * pipelines with error mapping and reconnection, Lua scripts run by EVALSHA
 * with an EVAL fallback, reply readers, paged walks over index keys), all
 * implemented in redis.c, and the methods the other files implement for
 * redis.c's ops table: the layout (redis_layout.c), loaders (redis_load.c), the books (redis_apply.c),
 * users, torrents and the whitelist (redis_admin.c), classes, settings and
 * tokens (redis_meta.c). Nothing outside store/redis*.c includes it.
 *
 * Key layout (docs/STORES.md, "Redis", lists every key and its type): all
 * keys start with REDIS_PREFIX; ids are decimal; info_hash and peer keys
 * carry their raw bytes. Scripts build the same names: keep both in step.
 */
#ifndef MIKA_STORE_REDIS_ADMIN_H
#define MIKA_STORE_REDIS_ADMIN_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define REDIS_PREFIX "mika:"
/* Rows fetched per round trip by every load and list: bounds each reply (and
 * what sits in the server's output buffer for us) whatever the table size. */
#define REDIS_PAGE 500

struct redis_store; /* store/redis.c */

/* Where a redis dsn points: redis://[[user]:pass@]host[:port][/db]. */
struct redis_dsn {
    char host[256];
    int port;           /* 6379 when not given */
    int db;             /* 0 when not given */
    char user[128];     /* "" = none (AUTH with the password alone) */
    char pass[256];     /* "" = no AUTH; never logged */
};

/* Parses dsn (a NUL-terminated string, outside bytes from the config) into
 * *out. MK_EINVAL with a message that names the part ("redis: dsn: ...")
 * and never the password. */
int redis_dsn_parse(const char *dsn, struct redis_dsn *out, struct mk_errbuf *eb);

/* A command's arguments, each copied (binary-safe). A failed allocation is
 * remembered and reported by the call that sends the list. */
struct redis_args {
    size_t n, cap;
    char **v;
    size_t *len;
    bool oom;
};

void redis_args_init(struct redis_args *a);
void redis_args_fini(struct redis_args *a);
void redis_arg(struct redis_args *a, const void *p, size_t len);
void redis_arg_str(struct redis_args *a, const char *s);
void redis_arg_u64(struct redis_args *a, uint64_t v);
void redis_arg_i64(struct redis_args *a, int64_t v);

/* One command, printf-style as hiredis's redisCommand (%s, %b with a size_t,
 * %u, %lld...). 0 with *out (caller frees with freeReplyObject; an error
 * reply is already mapped and freed), else an mk_err: MK_EUNAVAIL when the
 * server is unreachable, busy, loading or the connection was lost (dropped,
 * so the next call reconnects), MK_EIO for any other error reply. */
int redis_cmd(struct redis_store *s, redisReply **out, struct mk_errbuf *eb, const char *fmt, ...);

/* A pipeline: redis_append queues commands (connecting first if needed),
 * redis_get_all reads n replies into out[] (error replies are kept for the
 * caller to look at; only a lost connection fails the call, and then every
 * out[i] is NULL). Free with redis_replies_free. */
int redis_append(struct redis_store *s, struct mk_errbuf *eb, const char *fmt, ...);
int redis_get_all(struct redis_store *s, redisReply **out, size_t n, struct mk_errbuf *eb);
void redis_replies_free(redisReply **r, size_t n);

/* Runs a Lua script (a string literal: its SHA is cached per store, keyed
 * by its address) with no KEYS and a's ARGV, atomically on the server.
 * Scripts answer "OK[ value]" or "<ERRNAME> <detail>" (EEXIST, ENOTFOUND,
 * EINVAL, ELIMIT, ENOTSUP): 0 with the value copied into rest (may be NULL),
 * or that mk_err with the detail alone as eb's message. */
int redis_eval(struct redis_store *s, const char *script, const struct redis_args *a, char *rest,
               size_t cap, struct mk_errbuf *eb);

/* The connection, made if needed (NULL with eb filled when it cannot be);
 * redis_disconnect drops it. *redis_subscribed is false on every new one. */
redisContext *redis_context(struct redis_store *s, struct mk_errbuf *eb);
void redis_disconnect(struct redis_store *s);
bool *redis_subscribed(struct redis_store *s);

/* Reply readers: a NULL, nil or malformed reply reads as 0, "" or false. */
const redisReply *redis_el(const redisReply *r, size_t i);
bool redis_isnil(const redisReply *r);
int64_t redis_i64(const redisReply *r);
uint64_t redis_u64(const redisReply *r);
uint32_t redis_u32(const redisReply *r, uint32_t max); /* clamped to 0..max */
bool redis_bool(const redisReply *r);
/* Copies a string reply into out (cap bytes with the NUL), cut at a UTF-8
 * boundary; true if it had to cut. */
bool redis_text(const redisReply *r, char *out, size_t cap);

/* Called with each page of a walk (an array reply); a negative return
 * stops the walk and is returned as is. */
typedef int (*redis_page_fn)(struct redis_store *s, const redisReply *page, void *arg,
                             struct mk_errbuf *eb);
/* Walks a zset whose members all score 0 in byte order, from min to max
 * (ZRANGEBYLEX syntax: "-", "+", "[abc", "(abc"), REDIS_PAGE members per
 * round trip, each page resuming after the last member seen. */
int redis_walk_lex(struct redis_store *s, const char *key, const char *min, size_t minlen,
                   const char *max, size_t maxlen, redis_page_fn fn, void *arg,
                   struct mk_errbuf *eb);
/* Walks a zset by score from min up, REDIS_PAGE members per round trip;
 * pages are WITHSCORES replies (member, score, member, score...). */
int redis_walk_score(struct redis_store *s, const char *key, int64_t min, redis_page_fn fn,
                     void *arg, struct mk_errbuf *eb);

/* A score of a WITHSCORES reply: whole numbers (ids, unix seconds) here,
 * well below 2^53, so the double Redis keeps is exact. */
int64_t redis_score(const redisReply *r);

/* A peer's member in mika:peers and its key: torrent id and user id (4 bytes
 * each, big-endian) then the 20-byte peer_id. */
#define REDIS_PEER_KEY 28

/* The classes, read once per load or list (there are few). */
struct redis_class {
    uint32_t id;
    uint32_t up_mult, down_mult;
    bool may_download;
};
struct redis_classes {
    struct redis_class *v;
    size_t n;
};
int redis_classes_load(struct redis_store *s, struct redis_classes *c, struct mk_errbuf *eb);
void redis_classes_fini(struct redis_classes *c);
/* The class with id, NULL if none. */
const struct redis_class *redis_classes_find(const struct redis_classes *c, uint32_t id);

/* Reads users ids[0..n) (n <= REDIS_PAGE) in one round trip: found[i] false
 * for an id with no user. out[i].snatches only when with_snatches. */
int redis_users_fetch(struct redis_store *s, const uint32_t *ids, size_t n,
                      const struct redis_classes *cls, bool with_snatches, struct user_rec *out,
                      bool *found, struct mk_errbuf *eb);

/* Brings the key layout to this mika's version under the migration lock
 * (redis_layout.c); MK_ENOTSUP for a layout from a newer mika. */
int redis_layout_migrate(struct redis_store *s, struct mk_errbuf *eb);

/* ---- loaders (redis_load.c) and the books (redis_apply.c); contracts in
 * store.h (load_*, user_history, user_suspicious, apply*, prune_peers) ---- */

int redis_load_users(void *ctx, store_user_fn fn, void *arg, struct mk_errbuf *eb);
int redis_load_torrents(void *ctx, store_torrent_fn fn, void *arg, struct mk_errbuf *eb);
int redis_load_whitelist(void *ctx, store_whitelist_fn fn, void *arg, struct mk_errbuf *eb);
int redis_load_snatches(void *ctx, store_snatch_fn fn, void *arg, struct mk_errbuf *eb);
int redis_load_peers(void *ctx, int64_t seen_since, store_peer_fn fn, void *arg,
                     struct mk_errbuf *eb);
int redis_load_history(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
                       store_history_fn fn, void *arg, uint64_t *total, struct mk_errbuf *eb);
int redis_load_suspicious(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
                          store_suspicious_fn fn, void *arg, uint64_t *total,
                          struct mk_errbuf *eb);
int redis_apply(void *ctx, const struct acct_delta *rows, size_t n, struct mk_errbuf *eb);
int redis_apply_segment(void *ctx, const struct store_segment_id *id,
                        const struct acct_delta *rows, size_t n, struct mk_errbuf *eb);
int redis_apply_segments(void *ctx, const struct store_segment_id *ids, size_t nids,
                         const struct acct_delta *rows, size_t n, struct mk_errbuf *eb);
int redis_apply_prune_peers(void *ctx, int64_t seen_before, struct mk_errbuf *eb);
int redis_apply_prune_applied(void *ctx, int64_t applied_before, uint16_t node,
                              struct mk_errbuf *eb);

/* ---- the admin API's methods (redis_admin.c, redis_meta.c); contracts in
 * store.h ------------------------------------------------------------------ */

int redis_admin_ping(void *ctx, struct mk_errbuf *eb);
int redis_admin_user_get(void *ctx, uint32_t id, struct user_rec *out, struct mk_errbuf *eb);
int redis_admin_user_get_by_passkey(void *ctx, const char *passkey, struct user_rec *out,
                                    struct mk_errbuf *eb);
int redis_admin_user_list(void *ctx, const struct user_filter *f, store_user_rec_fn fn, void *arg,
                          uint64_t *total, struct mk_errbuf *eb);
int redis_admin_user_insert(void *ctx, struct user_rec *rec, bool has_id, struct mk_errbuf *eb);
int redis_admin_user_update(void *ctx, const struct user_rec *rec, struct mk_errbuf *eb);
int redis_admin_user_delete(void *ctx, uint32_t id, struct mk_errbuf *eb);
int redis_admin_torrent_get(void *ctx, const uint8_t info_hash[20], struct torrent_rec *out,
                            struct mk_errbuf *eb);
int redis_admin_torrent_get_by_id(void *ctx, uint32_t id, struct torrent_rec *out,
                                  struct mk_errbuf *eb);
int redis_admin_torrent_insert(void *ctx, struct torrent_rec *rec, struct mk_errbuf *eb);
int redis_admin_torrent_update(void *ctx, const struct torrent_rec *rec, struct mk_errbuf *eb);
int redis_admin_whitelist_insert(void *ctx, const struct whitelist_row *row,
                                 struct mk_errbuf *eb);
int redis_admin_whitelist_delete(void *ctx, const uint8_t *prefix, size_t len,
                                 struct whitelist_row *out, struct mk_errbuf *eb);
int redis_meta_class_list(void *ctx, store_class_fn fn, void *arg, struct mk_errbuf *eb);
int redis_meta_class_get(void *ctx, uint32_t id, struct class_row *out, struct mk_errbuf *eb);
int redis_meta_class_insert(void *ctx, struct class_row *row, bool has_id, struct mk_errbuf *eb);
int redis_meta_class_update(void *ctx, const struct class_row *row, struct mk_errbuf *eb);
int redis_meta_class_delete(void *ctx, uint32_t id, struct mk_errbuf *eb);
int redis_meta_settings_load(void *ctx, store_setting_fn fn, void *arg, struct mk_errbuf *eb);
int redis_meta_settings_put(void *ctx, const struct setting_row *rows, size_t n,
                             struct mk_errbuf *eb);
int redis_meta_load_tokens(void *ctx, uint32_t user_id, int64_t now, store_token_fn fn,
                            void *arg, struct mk_errbuf *eb);
int redis_meta_token_put(void *ctx, const struct token_row *row, struct mk_errbuf *eb);
int redis_meta_token_delete(void *ctx, const struct token_row *key, struct mk_errbuf *eb);

/* Clusters (redis_notify.c); contracts in store.h. */
int redis_notify_publish(void *ctx, const char *payload, struct mk_errbuf *eb);
int redis_notify_listen(void *ctx, int timeout_ms, store_change_fn fn, void *arg,
                        struct mk_errbuf *eb);
int redis_notify_counts_put(void *ctx, uint16_t node, bool reset,
                            const struct swarm_count_row *rows, size_t n, uint32_t ttl_s,
                            struct mk_errbuf *eb);
int redis_notify_counts_load(void *ctx, uint16_t self, uint32_t ttl_s, store_count_fn fn,
                             void *arg, struct mk_errbuf *eb);

#endif /* MIKA_STORE_REDIS_ADMIN_H */
