/* store/redis_admin.c: the redis backend's admin-API methods for users,
 * torrents and the whitelist.
 *
 * Owns: reading and writing single users, torrents and whitelist prefixes,
 * each write one Lua script, and the class cache and user reader the
 * loaders share.
 * Not here: classes, settings and tokens (redis_meta.c); the connection,
 * the layout and the ops table (redis.c, which implements the command
 * helpers declared in redis_admin.h); loaders and the books (redis_load.c,
 * redis_apply.c).
 * Invariants: answers match the sqlite and postgres backends' (the
 * conformance suite runs all three): a taken unique value is MK_EEXIST with
 * the column's name as the whole message, a missing row MK_ENOTFOUND naming
 * it. Each script checks everything before its first write (Redis does not
 * undo a script's writes when it fails later). Ids: a new id is one past
 * mika:seq:<table>, which every insert, with an id or without, moves up to
 * the largest id written, so ids given by a site and picked by mika never
 * collide. The index keys (mika:passkeys, mika:names, mika:classes:name,
 * the sorted sets) change only together with their rows.
 */
#include "store/redis_admin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"

/* ---- classes: the cache the loaders share ----------------------------------- */

static int admin_classes_page(struct redis_store *s, const redisReply *page, void *arg,
                              struct mk_errbuf *eb)
{
    struct redis_classes *c = arg;
    size_t n = page->elements / 2;
    int err = 0;
    for (size_t i = 0; err == 0 && i < n; i++) {
        err = redis_append(s, eb, "HMGET " REDIS_PREFIX "class:%b up_mult down_mult may_download",
                           page->element[2 * i]->str, page->element[2 * i]->len);
    }
    redisReply *r[REDIS_PAGE];
    if (err < 0 || (err = redis_get_all(s, r, n, eb)) < 0) {
        return err;
    }
    struct redis_class *v = realloc(c->v, (c->n + n) * sizeof(*v));
    if (!v) {
        redis_replies_free(r, n);
        return mk_fail(eb, MK_ENOMEM, "redis: out of memory reading classes");
    }
    c->v = v;
    for (size_t i = 0; i < n; i++) {
        if (redis_isnil(redis_el(r[i], 0))) {
            continue;
        }
        c->v[c->n++] = (struct redis_class){
            .id = redis_u32(page->element[2 * i], UINT32_MAX - 1),
            .up_mult = redis_u32(redis_el(r[i], 0), MK_MULT_MAX),
            .down_mult = redis_u32(redis_el(r[i], 1), MK_MULT_MAX),
            .may_download = redis_bool(redis_el(r[i], 2)),
        };
    }
    redis_replies_free(r, n);
    return 0;
}

int redis_classes_load(struct redis_store *s, struct redis_classes *c, struct mk_errbuf *eb)
{
    memset(c, 0, sizeof(*c));
    int err = redis_walk_score(s, REDIS_PREFIX "classes", 0, admin_classes_page, c, eb);
    if (err < 0) {
        redis_classes_fini(c);
    }
    return err;
}

void redis_classes_fini(struct redis_classes *c)
{
    free(c->v);
    memset(c, 0, sizeof(*c));
}

const struct redis_class *redis_classes_find(const struct redis_classes *c, uint32_t id)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->v[i].id == id) {
            return &c->v[i];
        }
    }
    return NULL;
}

/* ---- users --------------------------------------------------------------------- */

#define ADMIN_USER_FIELDS                                                                          \
    " passkey name enabled may_download class_id up_mult down_mult uploaded downloaded"           \
    " raw_uploaded raw_downloaded seed_time leech_time bonus announces created_at"

static void admin_user_rec(const redisReply *r, uint32_t id, const struct redis_class *cls,
                           struct user_rec *u)
{
    memset(u, 0, sizeof(*u));
    u->row.id = id;
    redis_text(redis_el(r, 0), u->row.passkey, sizeof(u->row.passkey));
    redis_text(redis_el(r, 1), u->name, sizeof(u->name));
    u->row.enabled = redis_bool(redis_el(r, 2));
    u->may_download = redis_bool(redis_el(r, 3));
    u->class_id = redis_u32(redis_el(r, 4), UINT32_MAX - 1);
    u->up_mult = redis_u32(redis_el(r, 5), MK_MULT_MAX);
    u->down_mult = redis_u32(redis_el(r, 6), MK_MULT_MAX);
    uint64_t *books[] = {&u->uploaded,   &u->downloaded, &u->raw_uploaded, &u->raw_downloaded,
                         &u->seed_time,  &u->leech_time, &u->bonus,        &u->announces};
    for (size_t j = 0; j < 8; j++) {
        *books[j] = redis_u64(redis_el(r, 7 + j));
    }
    u->created_at = redis_i64(redis_el(r, 15));
    /* A user whose class is gone counts as in a 1.0x class that may download. */
    u->row.can_download = u->may_download && (!cls || cls->may_download);
    u->row.has_mults = true;
    u->row.class_up = cls ? cls->up_mult : MK_MULT_ONE;
    u->row.class_down = cls ? cls->down_mult : MK_MULT_ONE;
    u->row.personal_up = u->up_mult;
    u->row.personal_down = u->down_mult;
}

int redis_users_fetch(struct redis_store *s, const uint32_t *ids, size_t n,
                      const struct redis_classes *cls, bool with_snatches, struct user_rec *out,
                      bool *found, struct mk_errbuf *eb)
{
    size_t per = with_snatches ? 2 : 1;
    int err = 0;
    for (size_t i = 0; err == 0 && i < n; i++) {
        err = redis_append(s, eb, "HMGET " REDIS_PREFIX "user:%u" ADMIN_USER_FIELDS, ids[i]);
        if (err == 0 && with_snatches) {
            err = redis_append(s, eb, "HLEN " REDIS_PREFIX "user:%u:snatches", ids[i]);
        }
    }
    redisReply *r[2 * REDIS_PAGE];
    if (err < 0 || (err = redis_get_all(s, r, n * per, eb)) < 0) {
        return err;
    }
    for (size_t i = 0; i < n; i++) {
        const redisReply *u = r[i * per];
        found[i] = u->type == REDIS_REPLY_ARRAY && !redis_isnil(redis_el(u, 0));
        if (!found[i]) {
            continue;
        }
        uint32_t class_id = redis_u32(redis_el(u, 4), UINT32_MAX - 1);
        admin_user_rec(u, ids[i], cls ? redis_classes_find(cls, class_id) : NULL, &out[i]);
        if (with_snatches) {
            out[i].snatches = redis_u32(r[i * per + 1], UINT32_MAX);
        }
    }
    redis_replies_free(r, n * per);
    return 0;
}

int redis_admin_ping(void *ctx, struct mk_errbuf *eb)
{
    redisReply *r;
    int err = redis_cmd(ctx, &r, eb, "EXISTS " REDIS_PREFIX "layout");
    if (err == 0) {
        freeReplyObject(r);
    }
    return err;
}

int redis_admin_user_get(void *ctx, uint32_t id, struct user_rec *out, struct mk_errbuf *eb)
{
    struct redis_classes cls;
    int err = redis_classes_load(ctx, &cls, eb);
    if (err < 0) {
        return err;
    }
    bool found = false;
    err = redis_users_fetch(ctx, &id, 1, &cls, true, out, &found, eb);
    redis_classes_fini(&cls);
    if (err == 0 && !found) {
        err = mk_fail(eb, MK_ENOTFOUND, "user");
    }
    return err;
}

int redis_admin_user_get_by_passkey(void *ctx, const char *passkey, struct user_rec *out,
                                    struct mk_errbuf *eb)
{
    redisReply *r;
    int err = redis_cmd(ctx, &r, eb, "HGET " REDIS_PREFIX "passkeys %s", passkey);
    if (err < 0) {
        return err;
    }
    int64_t id = redis_i64(r);
    bool nil = redis_isnil(r);
    freeReplyObject(r);
    if (nil || id <= 0 || id >= (int64_t)UINT32_MAX) {
        return mk_fail(eb, MK_ENOTFOUND, "user");
    }
    return redis_admin_user_get(ctx, (uint32_t)id, out, eb);
}

struct admin_list {
    const struct user_filter *f;
    const struct redis_classes *cls;
    store_user_rec_fn fn;
    void *arg;
    uint64_t matched;
    struct user_rec *recs;
};

static bool admin_user_matches(const struct user_filter *f, const struct user_rec *u)
{
    size_t plen = strlen(f->name_prefix);
    return (f->enabled < 0 || u->row.enabled == (f->enabled != 0)) &&
           (f->may_download < 0 || u->may_download == (f->may_download != 0)) &&
           (!f->has_class || u->class_id == f->class_id) &&
           (plen == 0 || strncmp(u->name, f->name_prefix, plen) == 0);
}

static int admin_list_page(struct redis_store *s, const redisReply *page, void *arg,
                           struct mk_errbuf *eb)
{
    struct admin_list *l = arg;
    uint32_t ids[REDIS_PAGE] = {0};
    bool found[REDIS_PAGE];
    size_t n = page->elements / 2 < REDIS_PAGE ? page->elements / 2 : REDIS_PAGE;
    for (size_t i = 0; i < n; i++) {
        ids[i] = redis_u32(page->element[2 * i], UINT32_MAX - 1);
    }
    int err = redis_users_fetch(s, ids, n, l->cls, true, l->recs, found, eb);
    for (size_t i = 0; err == 0 && i < n; i++) {
        if (!found[i] || !admin_user_matches(l->f, &l->recs[i])) {
            continue;
        }
        uint64_t at = l->matched++;
        if (at >= l->f->offset && at - l->f->offset < l->f->limit) {
            err = l->fn(&l->recs[i], l->arg);
            err = err > 0 ? 0 : err;
        }
    }
    return err;
}

int redis_admin_user_list(void *ctx, const struct user_filter *f, store_user_rec_fn fn, void *arg,
                          uint64_t *total, struct mk_errbuf *eb)
{
    /* Every user is read to count the matches (as count(*) would): the
     * admin API's lists cost O(users), a page of REDIS_PAGE at a time. */
    struct redis_classes cls;
    int err = redis_classes_load(ctx, &cls, eb);
    if (err < 0) {
        return err;
    }
    struct admin_list l = {.f = f, .cls = &cls, .fn = fn, .arg = arg,
                           .recs = calloc(REDIS_PAGE, sizeof(struct user_rec))};
    if (!l.recs) {
        err = mk_fail(eb, MK_ENOMEM, "redis: out of memory");
    } else {
        err = redis_walk_score(ctx, REDIS_PREFIX "users", 0, admin_list_page, &l, eb);
    }
    *total = l.matched;
    free(l.recs);
    redis_classes_fini(&cls);
    return err;
}

/* ARGV: has_id, id, passkey, name, enabled, may_download, class_id, up, down,
 * created_at. */
static const char ADMIN_USER_INSERT[] =
    "local a = ARGV\n"
    "if redis.call('EXISTS', 'mika:class:' .. a[7]) == 0 then return 'ENOTFOUND class_id' end\n"
    "if redis.call('HEXISTS', 'mika:passkeys', a[3]) == 1 then return 'EEXIST passkey' end\n"
    "if a[4] ~= '' and redis.call('HEXISTS', 'mika:names', a[4]) == 1 then\n"
    "  return 'EEXIST name'\n"
    "end\n"
    "local seq = tonumber(redis.call('GET', 'mika:seq:users') or '0')\n"
    "local id\n"
    "if a[1] == '1' then\n"
    "  id = tonumber(a[2])\n"
    "  if redis.call('EXISTS', 'mika:user:' .. id) == 1 then return 'EEXIST id' end\n"
    "else\n"
    "  id = seq + 1\n"
    "  while redis.call('EXISTS', 'mika:user:' .. id) == 1 do id = id + 1 end\n"
    "end\n"
    "if id < 1 or id >= 4294967295 then return 'ELIMIT id' end\n"
    "if id > seq then redis.call('SET', 'mika:seq:users', id) end\n"
    "local k = 'mika:user:' .. id\n"
    "redis.call('HSET', k, 'passkey', a[3], 'enabled', a[5], 'may_download', a[6],\n"
    "           'class_id', a[7], 'up_mult', a[8], 'down_mult', a[9], 'uploaded', 0,\n"
    "           'downloaded', 0, 'raw_uploaded', 0, 'raw_downloaded', 0, 'seed_time', 0,\n"
    "           'leech_time', 0, 'bonus', 0, 'announces', 0, 'created_at', a[10])\n"
    "if a[4] ~= '' then\n"
    "  redis.call('HSET', k, 'name', a[4])\n"
    "  redis.call('HSET', 'mika:names', a[4], id)\n"
    "end\n"
    "redis.call('HSET', 'mika:passkeys', a[3], id)\n"
    "redis.call('ZADD', 'mika:users', id, id)\n"
    "redis.call('HINCRBY', 'mika:class:' .. a[7], 'users', 1)\n"
    "return 'OK ' .. id\n";

/* ARGV: id, passkey, name, enabled, may_download, class_id, up, down. */
static const char ADMIN_USER_UPDATE[] =
    "local a = ARGV\n"
    "local k = 'mika:user:' .. a[1]\n"
    "if redis.call('EXISTS', 'mika:class:' .. a[6]) == 0 then return 'ENOTFOUND class_id' end\n"
    "if redis.call('EXISTS', k) == 0 then return 'ENOTFOUND user' end\n"
    "local pk = redis.call('HGET', 'mika:passkeys', a[2])\n"
    "if pk and pk ~= a[1] then return 'EEXIST passkey' end\n"
    "if a[3] ~= '' then\n"
    "  local n = redis.call('HGET', 'mika:names', a[3])\n"
    "  if n and n ~= a[1] then return 'EEXIST name' end\n"
    "end\n"
    "local old = redis.call('HMGET', k, 'passkey', 'name', 'class_id')\n"
    "if old[1] and old[1] ~= a[2] then redis.call('HDEL', 'mika:passkeys', old[1]) end\n"
    "redis.call('HSET', 'mika:passkeys', a[2], a[1])\n"
    "if old[2] and old[2] ~= a[3] then redis.call('HDEL', 'mika:names', old[2]) end\n"
    "if a[3] ~= '' then\n"
    "  redis.call('HSET', 'mika:names', a[3], a[1])\n"
    "  redis.call('HSET', k, 'name', a[3])\n"
    "else\n"
    "  redis.call('HDEL', k, 'name')\n"
    "end\n"
    "if old[3] ~= a[6] then\n"
    "  if old[3] and redis.call('EXISTS', 'mika:class:' .. old[3]) == 1 then\n"
    "    redis.call('HINCRBY', 'mika:class:' .. old[3], 'users', -1)\n"
    "  end\n"
    "  redis.call('HINCRBY', 'mika:class:' .. a[6], 'users', 1)\n"
    "end\n"
    "redis.call('HSET', k, 'passkey', a[2], 'enabled', a[4], 'may_download', a[5],\n"
    "           'class_id', a[6], 'up_mult', a[7], 'down_mult', a[8])\n"
    "return 'OK'\n";

/* ARGV: id. The user's snatch rows go with them (their history stays, as
 * in the other backends). */
static const char ADMIN_USER_DELETE[] =
    "local id = ARGV[1]\n"
    "local k = 'mika:user:' .. id\n"
    "local u = redis.call('HMGET', k, 'passkey', 'name', 'class_id')\n"
    "if not u[1] then return 'ENOTFOUND user' end\n"
    "redis.call('HDEL', 'mika:passkeys', u[1])\n"
    "if u[2] then redis.call('HDEL', 'mika:names', u[2]) end\n"
    "if u[3] and redis.call('EXISTS', 'mika:class:' .. u[3]) == 1 then\n"
    "  redis.call('HINCRBY', 'mika:class:' .. u[3], 'users', -1)\n"
    "end\n"
    "redis.call('DEL', k)\n"
    "redis.call('ZREM', 'mika:users', id)\n"
    "local sk = k .. ':snatches'\n"
    "for _, t in ipairs(redis.call('HKEYS', sk)) do\n"
    "  redis.call('ZREM', 'mika:snatches',\n"
    "             string.format('%010d:%010d', tonumber(t), tonumber(id)))\n"
    "end\n"
    "redis.call('DEL', sk)\n"
    "return 'OK'\n";

int redis_admin_user_insert(void *ctx, struct user_rec *rec, bool has_id, struct mk_errbuf *eb)
{
    struct redis_args a;
    redis_args_init(&a);
    redis_arg_str(&a, has_id ? "1" : "0");
    redis_arg_u64(&a, rec->row.id);
    redis_arg_str(&a, rec->row.passkey);
    redis_arg_str(&a, rec->name);
    redis_arg_u64(&a, rec->row.enabled);
    redis_arg_u64(&a, rec->may_download);
    redis_arg_u64(&a, rec->class_id);
    redis_arg_u64(&a, rec->up_mult);
    redis_arg_u64(&a, rec->down_mult);
    redis_arg_i64(&a, (int64_t)time(NULL));
    char id[24] = "";
    int err = redis_eval(ctx, ADMIN_USER_INSERT, &a, id, sizeof(id), eb);
    redis_args_fini(&a);
    if (err == 0) {
        err = redis_admin_user_get(ctx, (uint32_t)strtoul(id, NULL, 10), rec, eb);
    }
    return err;
}

int redis_admin_user_update(void *ctx, const struct user_rec *rec, struct mk_errbuf *eb)
{
    struct redis_args a;
    redis_args_init(&a);
    redis_arg_u64(&a, rec->row.id);
    redis_arg_str(&a, rec->row.passkey);
    redis_arg_str(&a, rec->name);
    redis_arg_u64(&a, rec->row.enabled);
    redis_arg_u64(&a, rec->may_download);
    redis_arg_u64(&a, rec->class_id);
    redis_arg_u64(&a, rec->up_mult);
    redis_arg_u64(&a, rec->down_mult);
    int err = redis_eval(ctx, ADMIN_USER_UPDATE, &a, NULL, 0, eb);
    redis_args_fini(&a);
    return err;
}

int redis_admin_user_delete(void *ctx, uint32_t id, struct mk_errbuf *eb)
{
    struct redis_args a;
    redis_args_init(&a);
    redis_arg_u64(&a, id);
    int err = redis_eval(ctx, ADMIN_USER_DELETE, &a, NULL, 0, eb);
    redis_args_fini(&a);
    return err;
}

/* ---- torrents -------------------------------------------------------------------- */

int redis_admin_torrent_get(void *ctx, const uint8_t info_hash[20], struct torrent_rec *out,
                            struct mk_errbuf *eb)
{
    redisReply *r;
    int err = redis_cmd(ctx, &r, eb,
                        "HMGET " REDIS_PREFIX "torrent:%b id enabled deleted reason snatches"
                        " name size freeleech up_mult down_mult created_at transferred",
                        info_hash, (size_t)20);
    if (err < 0) {
        return err;
    }
    if (redis_isnil(redis_el(r, 0))) {
        freeReplyObject(r);
        return mk_fail(eb, MK_ENOTFOUND, "torrent");
    }
    uint8_t ih[20];
    memcpy(ih, info_hash, 20); /* info_hash may point into *out */
    memset(out, 0, sizeof(*out));
    out->row.id = redis_u32(redis_el(r, 0), UINT32_MAX - 1);
    memcpy(out->row.info_hash, ih, 20);
    out->row.enabled = redis_bool(redis_el(r, 1));
    out->row.deleted = redis_bool(redis_el(r, 2));
    redis_text(redis_el(r, 3), out->row.reason, sizeof(out->row.reason));
    out->row.snatches = redis_u32(redis_el(r, 4), UINT32_MAX);
    redis_text(redis_el(r, 5), out->name, sizeof(out->name));
    out->has_size = !redis_isnil(redis_el(r, 6));
    out->size = redis_u64(redis_el(r, 6));
    out->freeleech = redis_bool(redis_el(r, 7));
    out->up_mult = redis_u32(redis_el(r, 8), MK_MULT_MAX);
    out->down_mult = redis_u32(redis_el(r, 9), MK_MULT_MAX);
    out->created_at = redis_i64(redis_el(r, 10));
    out->transferred = redis_u64(redis_el(r, 11));
    out->row.has_mults = true;
    out->row.freeleech = out->freeleech;
    out->row.up_mult = out->up_mult;
    out->row.down_mult = out->down_mult;
    out->row.size = out->size;
    freeReplyObject(r);
    return 0;
}

int redis_admin_torrent_get_by_id(void *ctx, uint32_t id, struct torrent_rec *out,
                                  struct mk_errbuf *eb)
{
    redisReply *r;
    int err = redis_cmd(ctx, &r, eb, "ZRANGEBYSCORE " REDIS_PREFIX "torrents %u %u LIMIT 0 1",
                        id, id);
    if (err < 0) {
        return err;
    }
    const redisReply *ih = redis_el(r, 0);
    uint8_t hash[20];
    bool found = ih && ih->type == REDIS_REPLY_STRING && ih->len == 20;
    if (found) {
        memcpy(hash, ih->str, 20);
    }
    freeReplyObject(r);
    return found ? redis_admin_torrent_get(ctx, hash, out, eb)
                 : mk_fail(eb, MK_ENOTFOUND, "torrent");
}

/* ARGV: info_hash, enabled, deleted, reason, name, size ('' for none),
 * freeleech, up, down, created_at. */
static const char ADMIN_TORRENT_INSERT[] =
    "local a = ARGV\n"
    "local k = 'mika:torrent:' .. a[1]\n"
    "if redis.call('EXISTS', k) == 1 then return 'EEXIST info_hash' end\n"
    "local id = tonumber(redis.call('GET', 'mika:seq:torrents') or '0') + 1\n"
    "if id >= 4294967295 then return 'ELIMIT id' end\n"
    "redis.call('SET', 'mika:seq:torrents', id)\n"
    "redis.call('HSET', k, 'id', id, 'enabled', a[2], 'deleted', a[3], 'reason', a[4],\n"
    "           'freeleech', a[7], 'up_mult', a[8], 'down_mult', a[9], 'snatches', 0,\n"
    "           'transferred', 0, 'created_at', a[10])\n"
    "if a[5] ~= '' then redis.call('HSET', k, 'name', a[5]) end\n"
    "if a[6] ~= '' then redis.call('HSET', k, 'size', a[6]) end\n"
    "redis.call('ZADD', 'mika:torrents', id, a[1])\n"
    "return 'OK ' .. id\n";

/* ARGV as ADMIN_TORRENT_INSERT without created_at. */
static const char ADMIN_TORRENT_UPDATE[] =
    "local a = ARGV\n"
    "local k = 'mika:torrent:' .. a[1]\n"
    "if redis.call('EXISTS', k) == 0 then return 'ENOTFOUND torrent' end\n"
    "redis.call('HSET', k, 'enabled', a[2], 'deleted', a[3], 'reason', a[4],\n"
    "           'freeleech', a[7], 'up_mult', a[8], 'down_mult', a[9])\n"
    "if a[5] ~= '' then redis.call('HSET', k, 'name', a[5])\n"
    "else redis.call('HDEL', k, 'name') end\n"
    "if a[6] ~= '' then redis.call('HSET', k, 'size', a[6])\n"
    "else redis.call('HDEL', k, 'size') end\n"
    "return 'OK'\n";

static void admin_torrent_args(struct redis_args *a, const struct torrent_rec *rec)
{
    redis_arg(a, rec->row.info_hash, 20);
    redis_arg_u64(a, rec->row.enabled);
    redis_arg_u64(a, rec->row.deleted);
    redis_arg_str(a, rec->row.reason);
    redis_arg_str(a, rec->name);
    if (rec->has_size && rec->size <= INT64_MAX) {
        redis_arg_u64(a, rec->size);
    } else {
        redis_arg_str(a, "");
    }
    redis_arg_u64(a, rec->freeleech);
    redis_arg_u64(a, rec->up_mult);
    redis_arg_u64(a, rec->down_mult);
}

int redis_admin_torrent_insert(void *ctx, struct torrent_rec *rec, struct mk_errbuf *eb)
{
    struct redis_args a;
    redis_args_init(&a);
    admin_torrent_args(&a, rec);
    redis_arg_i64(&a, (int64_t)time(NULL));
    int err = redis_eval(ctx, ADMIN_TORRENT_INSERT, &a, NULL, 0, eb);
    redis_args_fini(&a);
    if (err == 0) {
        uint8_t ih[20];
        memcpy(ih, rec->row.info_hash, 20);
        err = redis_admin_torrent_get(ctx, ih, rec, eb);
    }
    return err;
}

int redis_admin_torrent_update(void *ctx, const struct torrent_rec *rec, struct mk_errbuf *eb)
{
    struct redis_args a;
    redis_args_init(&a);
    admin_torrent_args(&a, rec);
    int err = redis_eval(ctx, ADMIN_TORRENT_UPDATE, &a, NULL, 0, eb);
    redis_args_fini(&a);
    return err;
}

/* ---- whitelist ------------------------------------------------------------------- */

static const char ADMIN_WHITELIST_INSERT[] =
    "if redis.call('ZSCORE', 'mika:whitelist', ARGV[1]) then return 'EEXIST prefix' end\n"
    "redis.call('ZADD', 'mika:whitelist', 0, ARGV[1])\n"
    "redis.call('HSET', 'mika:whitelist:names', ARGV[1], ARGV[2])\n"
    "return 'OK'\n";

static const char ADMIN_WHITELIST_DELETE[] =
    "if redis.call('ZREM', 'mika:whitelist', ARGV[1]) == 0 then return 'ENOTFOUND prefix' end\n"
    "local name = redis.call('HGET', 'mika:whitelist:names', ARGV[1]) or ''\n"
    "redis.call('HDEL', 'mika:whitelist:names', ARGV[1])\n"
    "return 'OK ' .. name\n";

int redis_admin_whitelist_insert(void *ctx, const struct whitelist_row *row,
                                 struct mk_errbuf *eb)
{
    if (row->prefix_len == 0 || row->prefix_len > MK_PREFIX_MAX) {
        return mk_fail(eb, MK_EINVAL, "prefix: %u bytes (1..%d)", row->prefix_len, MK_PREFIX_MAX);
    }
    struct redis_args a;
    redis_args_init(&a);
    redis_arg(&a, row->prefix, row->prefix_len);
    redis_arg_str(&a, row->name);
    int err = redis_eval(ctx, ADMIN_WHITELIST_INSERT, &a, NULL, 0, eb);
    redis_args_fini(&a);
    return err;
}

int redis_admin_whitelist_delete(void *ctx, const uint8_t *prefix, size_t len,
                                 struct whitelist_row *out, struct mk_errbuf *eb)
{
    if (len == 0 || len > MK_PREFIX_MAX) {
        return mk_fail(eb, MK_ENOTFOUND, "prefix");
    }
    struct redis_args a;
    redis_args_init(&a);
    redis_arg(&a, prefix, len);
    char name[MK_CLIENT_NAME_MAX + 1];
    int err = redis_eval(ctx, ADMIN_WHITELIST_DELETE, &a, name, sizeof(name), eb);
    redis_args_fini(&a);
    if (err == 0 && out) {
        memset(out, 0, sizeof(*out));
        memcpy(out->prefix, prefix, len);
        out->prefix_len = (uint8_t)len;
        snprintf(out->name, sizeof(out->name), "%s", name);
    }
    return err;
}
