/* store/redis_layout.c: the redis backend's key layout version and its
 * migrations.
 *
 * Owns: mika:layout (the version, REDIS_LAYOUT_VERSION now), the migration
 * lock mika:lock:layout (SET NX PX: nodes opening together take turns; one
 * that died holding it is waited out), the migration steps as Lua scripts,
 * and the default whitelist seeded into an empty database, once.
 * Not here: the keys' list (docs/STORES.md), the connection (redis.c).
 * Invariants: a step is one script that checks the version again itself, so
 * a node that got the lock after another finished changes nothing; a layout
 * from a newer mika is refused before anything is written; steps are only
 * ever appended.
 */
#include "store/redis_admin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define REDIS_LAYOUT_VERSION 1
/* The migration lock: held at most this long by a node that died holding it. */
#define REDIS_LOCK_MS 30000

/* Layout 0 -> 1: the default class and whitelist (ARGV[2..]: prefix, name
 * pairs). Runs under the migration lock, and checks the version again
 * itself, so a second node finds the work done. Only ever append steps. */
static const char REDIS_MIGRATE[] =
    "local cur = redis.call('GET', 'mika:layout')\n"
    "local v = tonumber(cur or '0')\n"
    "local want = tonumber(ARGV[1])\n"
    "if v == nil or v > want or v < 0 then return 'ENOTSUP ' .. cur end\n"
    "if v == want then return 'OK ' .. v end\n"
    "if v < 1 then\n"
    "  redis.call('HSET', 'mika:class:1', 'name', 'user', 'up_mult', 1000, 'down_mult', 1000,\n"
    "             'may_download', 1, 'users', 0)\n"
    "  redis.call('ZADD', 'mika:classes', 1, '1')\n"
    "  redis.call('HSET', 'mika:classes:name', 'user', 1)\n"
    "  if tonumber(redis.call('GET', 'mika:seq:classes') or '0') < 1 then\n"
    "    redis.call('SET', 'mika:seq:classes', 1)\n"
    "  end\n"
    "  for i = 2, #ARGV, 2 do\n"
    "    redis.call('ZADD', 'mika:whitelist', 0, ARGV[i])\n"
    "    redis.call('HSET', 'mika:whitelist:names', ARGV[i], ARGV[i + 1])\n"
    "  end\n"
    "end\n"
    "redis.call('SET', 'mika:layout', want)\n"
    "return 'OK ' .. v\n";

/* Releases the lock only if it is still ours (it may have expired). */
static const char REDIS_UNLOCK[] =
    "if redis.call('GET', 'mika:lock:layout') == ARGV[1] then\n"
    "  redis.call('DEL', 'mika:lock:layout')\n"
    "end\n"
    "return 'OK'\n";

static int redis_layout_check(struct redis_store *s, int64_t *version, struct mk_errbuf *eb)
{
    redisReply *r;
    int err = redis_cmd(s, &r, eb, "GET " REDIS_PREFIX "layout");
    if (err < 0) {
        return err;
    }
    char text[32];
    bool cut = redis_text(r, text, sizeof(text));
    bool nil = redis_isnil(r);
    freeReplyObject(r);
    char *end;
    long long v = nil ? 0 : strtoll(text, &end, 10);
    if (!nil && (cut || !text[0] || *end || v < 0 || v > REDIS_LAYOUT_VERSION)) {
        return mk_fail(eb, MK_ENOTSUP,
                       "redis: layout version %s is not one this mika knows (0..%d)", text,
                       REDIS_LAYOUT_VERSION);
    }
    *version = v;
    return 0;
}

/* Takes the migration lock (SET NX PX): a node that finds it taken waits
 * for the other to finish, then finds the layout current. */
static int redis_lock(struct redis_store *s, const char *token, struct mk_errbuf *eb)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        redisReply *r;
        int err = redis_cmd(s, &r, eb, "SET " REDIS_PREFIX "lock:layout %s NX PX %d", token,
                            REDIS_LOCK_MS);
        if (err < 0) {
            return err;
        }
        bool got = !redis_isnil(r);
        freeReplyObject(r);
        if (got) {
            return 0;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) * 1000 > REDIS_LOCK_MS + 5000) {
            return mk_fail(eb, MK_EUNAVAIL, "redis: another node holds the migration lock");
        }
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    }
}

int redis_layout_migrate(struct redis_store *s, struct mk_errbuf *eb)
{
    int64_t version = 0;
    int err = redis_layout_check(s, &version, eb);
    if (err < 0 || version == REDIS_LAYOUT_VERSION) {
        return err;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char token[64];
    snprintf(token, sizeof(token), "%ld.%ld.%ld.%p", (long)getpid(), (long)ts.tv_sec,
             ts.tv_nsec, (void *)s);
    err = redis_lock(s, token, eb);
    if (err < 0) {
        return err;
    }
    struct redis_args a;
    redis_args_init(&a);
    redis_arg_i64(&a, REDIS_LAYOUT_VERSION);
    for (size_t i = 0; i < store_default_whitelist_len; i++) {
        redis_arg_str(&a, store_default_whitelist[i].prefix);
        redis_arg_str(&a, store_default_whitelist[i].name);
    }
    char from[32] = "";
    err = redis_eval(s, REDIS_MIGRATE, &a, from, sizeof(from), eb);
    redis_args_fini(&a);
    if (err == MK_ENOTSUP) {
        char v[32];
        snprintf(v, sizeof(v), "%.20s", eb->msg);
        mk_fail(eb, MK_ENOTSUP, "redis: layout version %s is not one this mika knows (0..%d)", v,
                REDIS_LAYOUT_VERSION);
    }
    struct redis_args u;
    redis_args_init(&u);
    redis_arg_str(&u, token);
    struct mk_errbuf ignored;
    redis_eval(s, REDIS_UNLOCK, &u, NULL, 0, err < 0 ? &ignored : eb);
    redis_args_fini(&u);
    if (err == 0 && strtol(from, NULL, 10) < REDIS_LAYOUT_VERSION) {
        mk_log(MK_LOG_INFO, "store.redis", "schema migrated to version %d (key layout, from %s)",
               REDIS_LAYOUT_VERSION, from);
    }
    return err;
}
