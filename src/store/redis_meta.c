/* store/redis_meta.c: the redis backend's small tables for the admin API:
 * classes, settings and freeleech tokens.
 *
 * Owns: listing, reading and writing classes (each write one Lua script that
 * keeps mika:classes and mika:classes:name in step with the rows), settings
 * (mika:settings and its values) and tokens (mika:tokens and one hash per
 * token).
 * Not here: users, torrents and the whitelist (redis_admin.c), the class
 * cache the loaders share (redis_admin.c), the connection (redis.c).
 * Invariants: as redis_admin.c's: MK_EEXIST with the column's name alone,
 * MK_ENOTFOUND naming the row, every script checks before it writes.
 */
#include "store/redis_admin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* ---- classes --------------------------------------------------------------------- */

struct admin_class_walk {
    store_class_fn fn;
    void *arg;
};

static int admin_class_page(struct redis_store *s, const redisReply *page, void *arg,
                            struct mk_errbuf *eb)
{
    const struct admin_class_walk *w = arg;
    size_t n = page->elements / 2;
    int err = 0;
    for (size_t i = 0; err == 0 && i < n; i++) {
        err = redis_append(s, eb,
                           "HMGET " REDIS_PREFIX "class:%b name up_mult down_mult may_download"
                           " users",
                           page->element[2 * i]->str, page->element[2 * i]->len);
    }
    redisReply *r[REDIS_PAGE];
    if (err < 0 || (err = redis_get_all(s, r, n, eb)) < 0) {
        return err;
    }
    for (size_t i = 0; err == 0 && i < n; i++) {
        if (redis_isnil(redis_el(r[i], 0))) {
            continue;
        }
        struct class_row c;
        memset(&c, 0, sizeof(c));
        c.id = redis_u32(page->element[2 * i], UINT32_MAX - 1);
        redis_text(redis_el(r[i], 0), c.name, sizeof(c.name));
        c.up_mult = redis_u32(redis_el(r[i], 1), MK_MULT_MAX);
        c.down_mult = redis_u32(redis_el(r[i], 2), MK_MULT_MAX);
        c.may_download = redis_bool(redis_el(r[i], 3));
        c.users = redis_u32(redis_el(r[i], 4), UINT32_MAX);
        err = w->fn(&c, w->arg);
        err = err > 0 ? 0 : err;
    }
    redis_replies_free(r, n);
    return err;
}

int redis_meta_class_list(void *ctx, store_class_fn fn, void *arg, struct mk_errbuf *eb)
{
    struct admin_class_walk w = {.fn = fn, .arg = arg};
    return redis_walk_score(ctx, REDIS_PREFIX "classes", 0, admin_class_page, &w, eb);
}

static int admin_class_one(const struct class_row *row, void *arg)
{
    *(struct class_row *)arg = *row;
    return 0;
}

int redis_meta_class_get(void *ctx, uint32_t id, struct class_row *out, struct mk_errbuf *eb)
{
    /* A one-member page through the same reader as the list. */
    char key[24];
    snprintf(key, sizeof(key), "%" PRIu32, id);
    redisReply member = {.type = REDIS_REPLY_STRING, .str = key, .len = strlen(key)};
    redisReply score = member;
    redisReply *els[2] = {&member, &score};
    redisReply page = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = els};
    struct class_row row = {.id = 0};
    struct admin_class_walk w = {.fn = admin_class_one, .arg = &row};
    int err = admin_class_page(ctx, &page, &w, eb);
    if (err == 0 && row.id != id) {
        err = mk_fail(eb, MK_ENOTFOUND, "class");
    }
    if (err == 0) {
        *out = row;
    }
    return err;
}

/* ARGV: has_id, id, name, up, down, may_download. */
static const char ADMIN_CLASS_INSERT[] =
    "local a = ARGV\n"
    "if redis.call('HEXISTS', 'mika:classes:name', a[3]) == 1 then return 'EEXIST name' end\n"
    "local seq = tonumber(redis.call('GET', 'mika:seq:classes') or '0')\n"
    "local id\n"
    "if a[1] == '1' then\n"
    "  id = tonumber(a[2])\n"
    "  if redis.call('EXISTS', 'mika:class:' .. id) == 1 then return 'EEXIST id' end\n"
    "else\n"
    "  id = seq + 1\n"
    "  while redis.call('EXISTS', 'mika:class:' .. id) == 1 do id = id + 1 end\n"
    "end\n"
    "if id < 1 or id >= 4294967295 then return 'ELIMIT id' end\n"
    "if id > seq then redis.call('SET', 'mika:seq:classes', id) end\n"
    "redis.call('HSET', 'mika:class:' .. id, 'name', a[3], 'up_mult', a[4], 'down_mult', a[5],\n"
    "           'may_download', a[6], 'users', 0)\n"
    "redis.call('ZADD', 'mika:classes', id, id)\n"
    "redis.call('HSET', 'mika:classes:name', a[3], id)\n"
    "return 'OK ' .. id\n";

/* ARGV: id, name, up, down, may_download. */
static const char ADMIN_CLASS_UPDATE[] =
    "local a = ARGV\n"
    "local k = 'mika:class:' .. a[1]\n"
    "if redis.call('EXISTS', k) == 0 then return 'ENOTFOUND class' end\n"
    "local owner = redis.call('HGET', 'mika:classes:name', a[2])\n"
    "if owner and owner ~= a[1] then return 'EEXIST name' end\n"
    "local old = redis.call('HGET', k, 'name')\n"
    "if old and old ~= a[2] then redis.call('HDEL', 'mika:classes:name', old) end\n"
    "redis.call('HSET', 'mika:classes:name', a[2], a[1])\n"
    "redis.call('HSET', k, 'name', a[2], 'up_mult', a[3], 'down_mult', a[4],\n"
    "           'may_download', a[5])\n"
    "return 'OK'\n";

static const char ADMIN_CLASS_DELETE[] =
    "local k = 'mika:class:' .. ARGV[1]\n"
    "local c = redis.call('HMGET', k, 'name', 'users')\n"
    "if not c[1] then return 'ENOTFOUND class' end\n"
    "if tonumber(c[2] or '0') > 0 then return 'EEXIST users' end\n"
    "redis.call('DEL', k)\n"
    "redis.call('ZREM', 'mika:classes', ARGV[1])\n"
    "redis.call('HDEL', 'mika:classes:name', c[1])\n"
    "return 'OK'\n";

int redis_meta_class_insert(void *ctx, struct class_row *row, bool has_id, struct mk_errbuf *eb)
{
    struct redis_args a;
    redis_args_init(&a);
    redis_arg_str(&a, has_id ? "1" : "0");
    redis_arg_u64(&a, row->id);
    redis_arg_str(&a, row->name);
    redis_arg_u64(&a, row->up_mult);
    redis_arg_u64(&a, row->down_mult);
    redis_arg_u64(&a, row->may_download);
    char id[24] = "";
    int err = redis_eval(ctx, ADMIN_CLASS_INSERT, &a, id, sizeof(id), eb);
    redis_args_fini(&a);
    return err == 0 ? redis_meta_class_get(ctx, (uint32_t)strtoul(id, NULL, 10), row, eb) : err;
}

int redis_meta_class_update(void *ctx, const struct class_row *row, struct mk_errbuf *eb)
{
    struct redis_args a;
    redis_args_init(&a);
    redis_arg_u64(&a, row->id);
    redis_arg_str(&a, row->name);
    redis_arg_u64(&a, row->up_mult);
    redis_arg_u64(&a, row->down_mult);
    redis_arg_u64(&a, row->may_download);
    int err = redis_eval(ctx, ADMIN_CLASS_UPDATE, &a, NULL, 0, eb);
    redis_args_fini(&a);
    return err;
}

int redis_meta_class_delete(void *ctx, uint32_t id, struct mk_errbuf *eb)
{
    if (id == MK_CLASS_DEFAULT) {
        return mk_fail(eb, MK_EINVAL, "the default class %d cannot be deleted", MK_CLASS_DEFAULT);
    }
    struct redis_args a;
    redis_args_init(&a);
    redis_arg_u64(&a, id);
    int err = redis_eval(ctx, ADMIN_CLASS_DELETE, &a, NULL, 0, eb);
    redis_args_fini(&a);
    return err;
}

/* ---- settings -------------------------------------------------------------------- */

struct admin_setting_walk {
    store_setting_fn fn;
    void *arg;
};

static int admin_setting_page(struct redis_store *s, const redisReply *page, void *arg,
                              struct mk_errbuf *eb)
{
    const struct admin_setting_walk *w = arg;
    size_t n = page->elements;
    int err = 0;
    for (size_t i = 0; err == 0 && i < n; i++) {
        err = redis_append(s, eb, "HGET " REDIS_PREFIX "settings:values %b",
                           page->element[i]->str, page->element[i]->len);
    }
    redisReply *r[REDIS_PAGE];
    if (err < 0 || (err = redis_get_all(s, r, n, eb)) < 0) {
        return err;
    }
    for (size_t i = 0; err == 0 && i < n; i++) {
        struct setting_row row;
        redis_text(page->element[i], row.key, sizeof(row.key));
        redis_text(r[i], row.value, sizeof(row.value));
        err = w->fn(&row, w->arg);
        err = err > 0 ? 0 : err;
    }
    redis_replies_free(r, n);
    return err;
}

int redis_meta_settings_load(void *ctx, store_setting_fn fn, void *arg, struct mk_errbuf *eb)
{
    struct admin_setting_walk w = {.fn = fn, .arg = arg};
    return redis_walk_lex(ctx, REDIS_PREFIX "settings", "-", 1, "+", 1, admin_setting_page, &w,
                          eb);
}

/* ARGV: key, value, key, value... */
static const char ADMIN_SETTINGS_PUT[] =
    "for i = 1, #ARGV, 2 do\n"
    "  redis.call('ZADD', 'mika:settings', 0, ARGV[i])\n"
    "  redis.call('HSET', 'mika:settings:values', ARGV[i], ARGV[i + 1])\n"
    "end\n"
    "return 'OK'\n";

int redis_meta_settings_put(void *ctx, const struct setting_row *rows, size_t n,
                             struct mk_errbuf *eb)
{
    if (n == 0) {
        return 0;
    }
    struct redis_args a;
    redis_args_init(&a);
    for (size_t i = 0; i < n; i++) {
        redis_arg_str(&a, rows[i].key);
        redis_arg_str(&a, rows[i].value);
    }
    int err = redis_eval(ctx, ADMIN_SETTINGS_PUT, &a, NULL, 0, eb);
    redis_args_fini(&a);
    return err;
}

/* ---- tokens ------------------------------------------------------------------------ */

struct admin_token_walk {
    int64_t now;
    store_token_fn fn;
    void *arg;
};

static int admin_token_page(struct redis_store *s, const redisReply *page, void *arg,
                            struct mk_errbuf *eb)
{
    const struct admin_token_walk *w = arg;
    size_t n = page->elements;
    uint32_t uid[REDIS_PAGE], tid[REDIS_PAGE];
    int err = 0;
    for (size_t i = 0; err == 0 && i < n; i++) {
        const redisReply *m = page->element[i];
        char num[11];
        uid[i] = tid[i] = 0;
        if (m->len == 21) {
            memcpy(num, m->str, 10);
            num[10] = '\0';
            uid[i] = (uint32_t)strtoul(num, NULL, 10);
            memcpy(num, m->str + 11, 10);
            tid[i] = (uint32_t)strtoul(num, NULL, 10);
        }
        err = redis_append(s, eb, "HMGET " REDIS_PREFIX "token:%u:%u up_mult down_mult expires",
                           uid[i], tid[i]);
        if (err == 0) {
            err = redis_append(s, eb, "ZRANGEBYSCORE " REDIS_PREFIX "torrents %u %u LIMIT 0 1",
                               tid[i], tid[i]);
        }
    }
    redisReply *r[2 * REDIS_PAGE];
    if (err < 0 || (err = redis_get_all(s, r, 2 * n, eb)) < 0) {
        return err;
    }
    for (size_t i = 0; err == 0 && i < n; i++) {
        const redisReply *t = r[2 * i];
        if (!uid[i] || redis_isnil(redis_el(t, 0))) {
            continue;
        }
        struct token_row row = {
            .user_id = uid[i],
            .torrent_id = tid[i],
            .up_mult = redis_u32(redis_el(t, 0), MK_MULT_MAX),
            .down_mult = redis_u32(redis_el(t, 1), MK_MULT_MAX),
            .expires = redis_i64(redis_el(t, 2)),
        };
        if (row.expires != 0 && row.expires <= w->now) {
            continue;
        }
        const redisReply *ih = redis_el(r[2 * i + 1], 0);
        if (ih && ih->type == REDIS_REPLY_STRING && ih->len == 20) {
            memcpy(row.info_hash, ih->str, 20);
        }
        err = w->fn(&row, w->arg);
        err = err > 0 ? 0 : err;
    }
    redis_replies_free(r, 2 * n);
    return err;
}

int redis_meta_load_tokens(void *ctx, uint32_t user_id, int64_t now, store_token_fn fn,
                            void *arg, struct mk_errbuf *eb)
{
    struct admin_token_walk w = {.now = now, .fn = fn, .arg = arg};
    if (user_id == 0) {
        return redis_walk_lex(ctx, REDIS_PREFIX "tokens", "-", 1, "+", 1, admin_token_page, &w,
                              eb);
    }
    /* One user's members are "<uid>:..." and ':' sorts before ';'. */
    char min[16], max[16];
    int lmin = snprintf(min, sizeof(min), "[%010" PRIu32 ":", user_id);
    int lmax = snprintf(max, sizeof(max), "(%010" PRIu32 ";", user_id);
    return redis_walk_lex(ctx, REDIS_PREFIX "tokens", min, (size_t)lmin, max, (size_t)lmax,
                          admin_token_page, &w, eb);
}

/* ARGV: user, torrent id (0: find it by info_hash), info_hash, up, down,
 * expires. The torrent is not checked when its id is given: it may live in
 * another backend (a split config). */
static const char ADMIN_TOKEN_PUT[] =
    "local a = ARGV\n"
    "if redis.call('EXISTS', 'mika:user:' .. a[1]) == 0 then\n"
    "  return 'ENOTFOUND user or torrent'\n"
    "end\n"
    "local tid = a[2]\n"
    "if tid == '0' then\n"
    "  tid = redis.call('HGET', 'mika:torrent:' .. a[3], 'id')\n"
    "  if not tid then return 'ENOTFOUND user or torrent' end\n"
    "end\n"
    "local m = string.format('%010d:%010d', tonumber(a[1]), tonumber(tid))\n"
    "redis.call('ZADD', 'mika:tokens', 0, m)\n"
    "redis.call('HSET', 'mika:token:' .. a[1] .. ':' .. tid, 'up_mult', a[4], 'down_mult', a[5],\n"
    "           'expires', a[6])\n"
    "return 'OK'\n";

static const char ADMIN_TOKEN_DELETE[] =
    "local a = ARGV\n"
    "local tid = a[2]\n"
    "if tid == '0' then\n"
    "  tid = redis.call('HGET', 'mika:torrent:' .. a[3], 'id')\n"
    "  if not tid then return 'ENOTFOUND token' end\n"
    "end\n"
    "local m = string.format('%010d:%010d', tonumber(a[1]), tonumber(tid))\n"
    "if redis.call('ZREM', 'mika:tokens', m) == 0 then return 'ENOTFOUND token' end\n"
    "redis.call('DEL', 'mika:token:' .. a[1] .. ':' .. tid)\n"
    "return 'OK'\n";

static int admin_token_run(void *ctx, const char *script, const struct token_row *row,
                           struct mk_errbuf *eb)
{
    struct redis_args a;
    redis_args_init(&a);
    redis_arg_u64(&a, row->user_id);
    redis_arg_u64(&a, row->torrent_id);
    redis_arg(&a, row->info_hash, 20);
    redis_arg_u64(&a, row->up_mult);
    redis_arg_u64(&a, row->down_mult);
    redis_arg_i64(&a, row->expires);
    int err = redis_eval(ctx, script, &a, NULL, 0, eb);
    redis_args_fini(&a);
    return err;
}

int redis_meta_token_put(void *ctx, const struct token_row *row, struct mk_errbuf *eb)
{
    return admin_token_run(ctx, ADMIN_TOKEN_PUT, row, eb);
}

int redis_meta_token_delete(void *ctx, const struct token_row *key, struct mk_errbuf *eb)
{
    return admin_token_run(ctx, ADMIN_TOKEN_DELETE, key, eb);
}
