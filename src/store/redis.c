/* store/redis.c: the "redis" store backend (hiredis), for state shared by
 * several tracker nodes.
 *
 * Owns: the DSN (redis://[[user]:pass@]host[:port][/db]), one connection per
 * open store (dropped on loss, made again by the next call) with its AUTH and
 * SELECT, the Lua scripts' SHA cache (EVALSHA, EVAL on NOSCRIPT), the key
 * layout's version (mika:layout, migrated at open under a SET NX PX lock so
 * nodes starting together do not race), the default whitelist seeded into
 * an empty database, the paged loaders and apply()/apply_segment().
 * Not here: the admin API's methods (redis_admin.c), retrying an unavailable
 * store (acct/flusher.c), choosing the backend (store/store.c).
 * Invariants: never KEYS and never a reply that grows with a table: every
 * load walks an index key REDIS_PAGE members at a time; every multi-key write
 * is one Lua script, checked before it writes anything (a script that fails
 * half-way would keep its first writes); counters are 64-bit HINCRBY that
 * saturate at 2^63-1 instead of failing; a lost connection answers
 * MK_EUNAVAIL within the timeouts below and is reopened by the next call;
 * the password is never logged.
 *
 * Sections: argument lists and replies, DSN and connection, commands and
 * scripts, layout, loaders, apply.
 */
#include "store/redis_admin.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define REDIS_LAYOUT_VERSION 1
#define REDIS_SCRIPTS_MAX 32
#define REDIS_CONNECT_MS 2000
/* Longest a command may take: a whole journal segment is one script. */
#define REDIS_COMMAND_MS 10000
/* The migration lock: held at most this long by a node that died holding it. */
#define REDIS_LOCK_MS 30000

struct redis_sha {
    const char *src; /* a string literal: its address is the key */
    char sha[41];
};

struct redis_store {
    redisContext *c; /* NULL: connect at the next call */
    char host[256];
    int port;
    int db;
    char user[128];
    char pass[256]; /* never logged */
    bool was_up;
    int nshas;
    struct redis_sha shas[REDIS_SCRIPTS_MAX];
};

/* ---- argument lists and replies ------------------------------------------ */

void redis_args_init(struct redis_args *a)
{
    memset(a, 0, sizeof(*a));
}

void redis_args_fini(struct redis_args *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free(a->v[i]);
    }
    free(a->v);
    free(a->len);
    memset(a, 0, sizeof(*a));
}

void redis_arg(struct redis_args *a, const void *p, size_t len)
{
    if (a->oom) {
        return;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        char **v = realloc(a->v, cap * sizeof(*v));
        if (v) {
            a->v = v;
        }
        size_t *l = v ? realloc(a->len, cap * sizeof(*l)) : NULL;
        if (!l) {
            a->oom = true;
            return;
        }
        a->len = l;
        a->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        a->oom = true;
        return;
    }
    if (len > 0) {
        memcpy(copy, p, len);
    }
    copy[len] = '\0';
    a->v[a->n] = copy;
    a->len[a->n] = len;
    a->n++;
}

void redis_arg_str(struct redis_args *a, const char *s)
{
    redis_arg(a, s, strlen(s));
}

void redis_arg_u64(struct redis_args *a, uint64_t v)
{
    char num[24];
    redis_arg(a, num, (size_t)snprintf(num, sizeof(num), "%" PRIu64, v));
}

void redis_arg_i64(struct redis_args *a, int64_t v)
{
    char num[24];
    redis_arg(a, num, (size_t)snprintf(num, sizeof(num), "%" PRId64, v));
}

const redisReply *redis_el(const redisReply *r, size_t i)
{
    return r && r->type == REDIS_REPLY_ARRAY && i < r->elements ? r->element[i] : NULL;
}

bool redis_isnil(const redisReply *r)
{
    return !r || r->type == REDIS_REPLY_NIL;
}

int64_t redis_i64(const redisReply *r)
{
    if (!r) {
        return 0;
    }
    if (r->type == REDIS_REPLY_INTEGER) {
        return r->integer;
    }
    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 20) {
        return 0;
    }
    char num[24];
    memcpy(num, r->str, r->len);
    num[r->len] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(num, &end, 10);
    return *end || errno ? 0 : (int64_t)v;
}

uint64_t redis_u64(const redisReply *r)
{
    int64_t v = redis_i64(r);
    return v < 0 ? 0 : (uint64_t)v;
}

uint32_t redis_u32(const redisReply *r, uint32_t max)
{
    int64_t v = redis_i64(r);
    return v < 0 ? 0 : (uint64_t)v > max ? max : (uint32_t)v;
}

bool redis_bool(const redisReply *r)
{
    return redis_i64(r) != 0;
}

bool redis_text(const redisReply *r, char *out, size_t cap)
{
    const unsigned char *p = r && r->type == REDIS_REPLY_STRING ? (const unsigned char *)r->str
                                                                : NULL;
    size_t len = p ? r->len : 0;
    bool cut = len >= cap;
    if (cut) {
        len = cap - 1;
        while (len > 0 && (p[len] & 0xc0) == 0x80) {
            len--;
        }
    }
    if (len > 0) {
        memcpy(out, p, len);
    }
    out[len] = '\0';
    return cut;
}

void redis_replies_free(redisReply **r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (r[i]) {
            freeReplyObject(r[i]);
            r[i] = NULL;
        }
    }
}

/* ---- DSN and connection ---------------------------------------------------- */

/* redis://[[user]:pass@]host[:port][/db]; host may be [v6]. The messages
 * name the part, never the password. */
static int redis_dsn_parse(struct redis_store *s, const char *dsn, struct mk_errbuf *eb)
{
    static const char scheme[] = "redis://";
    if (strncmp(dsn, scheme, sizeof(scheme) - 1) != 0) {
        return mk_fail(eb, MK_EINVAL, "redis: dsn must start with redis:// "
                                      "(redis://[:password@]host[:port][/db])");
    }
    const char *p = dsn + sizeof(scheme) - 1;
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon) {
            return mk_fail(eb, MK_EINVAL, "redis: dsn: credentials must be [user]:password@");
        }
        size_t ulen = (size_t)(colon - p), plen = (size_t)(at - colon - 1);
        if (ulen >= sizeof(s->user) || plen >= sizeof(s->pass)) {
            return mk_fail(eb, MK_EINVAL, "redis: dsn: user or password too long");
        }
        memcpy(s->user, p, ulen);
        s->user[ulen] = '\0';
        memcpy(s->pass, colon + 1, plen);
        s->pass[plen] = '\0';
        p = at + 1;
    }
    const char *host = p, *host_end;
    if (*p == '[') {
        host = p + 1;
        host_end = strchr(host, ']');
        if (!host_end) {
            return mk_fail(eb, MK_EINVAL, "redis: dsn: unclosed [ in host");
        }
        p = host_end + 1;
    } else {
        host_end = p + strcspn(p, ":/");
        p = host_end;
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen == 0 || hlen >= sizeof(s->host)) {
        return mk_fail(eb, MK_EINVAL, "redis: dsn: host is empty or too long");
    }
    memcpy(s->host, host, hlen);
    s->host[hlen] = '\0';
    s->port = 6379;
    s->db = 0;
    char *end;
    if (*p == ':') {
        errno = 0;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || errno || port < 1 || port > 65535 || (*end && *end != '/')) {
            return mk_fail(eb, MK_EINVAL, "redis: dsn: port must be 1..65535");
        }
        s->port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1]) {
        errno = 0;
        long db = strtol(p + 1, &end, 10);
        if (end == p + 1 || errno || db < 0 || db > 1000000 || *end) {
            return mk_fail(eb, MK_EINVAL, "redis: dsn: db must be a number (0 by default)");
        }
        s->db = (int)db;
    } else if (*p && strcmp(p, "/") != 0) {
        return mk_fail(eb, MK_EINVAL, "redis: dsn: unexpected text after the host");
    }
    return 0;
}

static void redis_drop(struct redis_store *s)
{
    if (s->c) {
        redisFree(s->c);
        s->c = NULL;
    }
}

/* Error replies that mean "try again later". */
static bool redis_err_is_transient(const char *msg)
{
    static const char *const transient[] = {"LOADING", "BUSY", "MASTERDOWN", "OOM", "READONLY",
                                            "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS"};
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++) {
        if (strncmp(msg, transient[i], strlen(transient[i])) == 0) {
            return true;
        }
    }
    return false;
}

/* The mk_err of a failed call: no reply is a lost connection (dropped, so
 * the next call reconnects); an error reply is mapped and freed. */
static int redis_fail(struct redis_store *s, redisReply *r, struct mk_errbuf *eb, const char *what)
{
    if (!r) {
        char msg[160];
        snprintf(msg, sizeof(msg), "%s", s->c && s->c->errstr[0] ? s->c->errstr : "no reply");
        redis_drop(s);
        return mk_fail(eb, MK_EUNAVAIL, "redis: %s: connection lost: %s", what, msg);
    }
    char msg[200];
    snprintf(msg, sizeof(msg), "%.*s", (int)(r->len < 190 ? r->len : 190), r->str ? r->str : "");
    freeReplyObject(r);
    return mk_fail(eb, redis_err_is_transient(msg) ? MK_EUNAVAIL : MK_EIO, "redis: %s: %s", what,
                   msg);
}

static int redis_connect(struct redis_store *s, struct mk_errbuf *eb)
{
    struct timeval ct = {REDIS_CONNECT_MS / 1000, (REDIS_CONNECT_MS % 1000) * 1000};
    struct timeval rt = {REDIS_COMMAND_MS / 1000, (REDIS_COMMAND_MS % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(s->host, s->port, ct);
    if (!c) {
        return mk_fail(eb, MK_ENOMEM, "redis: out of memory");
    }
    if (c->err) {
        int err = mk_fail(eb, MK_EUNAVAIL, "redis: connect %s:%d: %s", s->host, s->port, c->errstr);
        redisFree(c);
        return err;
    }
    /* The command timeout bounds how long a dead server can hold a call;
     * keep-alive finds a silently vanished one. */
    if (redisSetTimeout(c, rt) != REDIS_OK || redisEnableKeepAlive(c) != REDIS_OK) {
        redisFree(c);
        return mk_fail(eb, MK_EUNAVAIL, "redis: connect %s:%d: cannot set timeouts", s->host,
                       s->port);
    }
    s->c = c;
    redisReply *r = NULL;
    if (s->pass[0] || s->user[0]) {
        r = s->user[0] ? redisCommand(c, "AUTH %s %s", s->user, s->pass)
                       : redisCommand(c, "AUTH %s", s->pass);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            return redis_fail(s, r, eb, "AUTH");
        }
        freeReplyObject(r);
    }
    if (s->db != 0) {
        r = redisCommand(c, "SELECT %d", s->db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            return redis_fail(s, r, eb, "SELECT");
        }
        freeReplyObject(r);
    }
    if (s->was_up) {
        mk_log(MK_LOG_INFO, "store.redis", "reconnected to %s:%d/%d", s->host, s->port, s->db);
    }
    s->was_up = true;
    return 0;
}

static int redis_ready(struct redis_store *s, struct mk_errbuf *eb)
{
    return s->c ? 0 : redis_connect(s, eb);
}

/* ---- commands and scripts ----------------------------------------------------- */

int redis_cmd(struct redis_store *s, redisReply **out, struct mk_errbuf *eb, const char *fmt, ...)
{
    int err = redis_ready(s, eb);
    if (err < 0) {
        return err;
    }
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(s->c, fmt, ap);
    va_end(ap);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        return redis_fail(s, r, eb, "command");
    }
    if (out) {
        *out = r;
    } else {
        freeReplyObject(r);
    }
    return 0;
}

int redis_append(struct redis_store *s, struct mk_errbuf *eb, const char *fmt, ...)
{
    int err = redis_ready(s, eb);
    if (err < 0) {
        return err;
    }
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAppendCommand(s->c, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        /* Replies of what was queued before would answer the next call. */
        redis_drop(s);
        return mk_fail(eb, MK_ENOMEM, "redis: out of memory queueing a command");
    }
    return 0;
}

int redis_get_all(struct redis_store *s, redisReply **out, size_t n, struct mk_errbuf *eb)
{
    memset(out, 0, n * sizeof(*out));
    if (!s->c) {
        return mk_fail(eb, MK_EUNAVAIL, "redis: connection lost");
    }
    for (size_t i = 0; i < n; i++) {
        void *r = NULL;
        if (redisGetReply(s->c, &r) != REDIS_OK || !r) {
            redis_replies_free(out, i);
            return redis_fail(s, NULL, eb, "pipeline");
        }
        out[i] = r;
    }
    return 0;
}

static struct redis_sha *redis_sha_find(struct redis_store *s, const char *src)
{
    for (int i = 0; i < s->nshas; i++) {
        if (s->shas[i].src == src) {
            return &s->shas[i];
        }
    }
    if (s->nshas == REDIS_SCRIPTS_MAX) {
        return NULL; /* a bug: more scripts than slots; they run by EVAL */
    }
    struct redis_sha *h = &s->shas[s->nshas++];
    h->src = src;
    h->sha[0] = '\0';
    return h;
}

/* Sends EVALSHA (or EVAL) script 0 ARGV... and reads the reply. */
static redisReply *redis_eval_send(struct redis_store *s, const char *verb, const char *body,
                                   const struct redis_args *a)
{
    size_t n = a->n + 3;
    const char **argv = malloc(n * sizeof(*argv));
    size_t *lens = malloc(n * sizeof(*lens));
    redisReply *r = NULL;
    if (argv && lens) {
        argv[0] = verb;
        lens[0] = strlen(verb);
        argv[1] = body;
        lens[1] = strlen(body);
        argv[2] = "0";
        lens[2] = 1;
        for (size_t i = 0; i < a->n; i++) {
            argv[i + 3] = a->v[i];
            lens[i + 3] = a->len[i];
        }
        r = redisCommandArgv(s->c, (int)n, argv, lens);
    }
    free(argv);
    free(lens);
    return r;
}

int redis_eval(struct redis_store *s, const char *script, const struct redis_args *a, char *rest,
               size_t cap, struct mk_errbuf *eb)
{
    if (a->oom) {
        return mk_fail(eb, MK_ENOMEM, "redis: out of memory building a script's arguments");
    }
    int err = redis_ready(s, eb);
    if (err < 0) {
        return err;
    }
    struct redis_sha *h = redis_sha_find(s, script);
    if (h && !h->sha[0]) {
        redisReply *r = redisCommand(s->c, "SCRIPT LOAD %s", script);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            return redis_fail(s, r, eb, "SCRIPT LOAD");
        }
        if (r->type != REDIS_REPLY_STRING || r->len != 40) {
            freeReplyObject(r);
            return mk_fail(eb, MK_EIO, "redis: SCRIPT LOAD: unexpected reply");
        }
        memcpy(h->sha, r->str, 40);
        h->sha[40] = '\0';
        freeReplyObject(r);
    }
    redisReply *r = h ? redis_eval_send(s, "EVALSHA", h->sha, a) : NULL;
    if (!h || (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0)) {
        /* The server forgot it (a restart, SCRIPT FLUSH): EVAL loads it again. */
        if (r) {
            freeReplyObject(r);
        }
        r = s->c ? redis_eval_send(s, "EVAL", script, a) : NULL;
    }
    if (!r || r->type == REDIS_REPLY_ERROR) {
        return redis_fail(s, r, eb, "script");
    }
    if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS) {
        freeReplyObject(r);
        return mk_fail(eb, MK_EIO, "redis: script: unexpected reply");
    }
    static const struct {
        const char *name;
        int err;
    } answers[] = {{"OK", 0},
                   {"EEXIST", MK_EEXIST},
                   {"ENOTFOUND", MK_ENOTFOUND},
                   {"EINVAL", MK_EINVAL},
                   {"ELIMIT", MK_ELIMIT},
                   {"ENOTSUP", MK_ENOTSUP}};
    err = MK_EIO;
    size_t skip = 0;
    for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
        size_t len = strlen(answers[i].name);
        if (r->len >= len && memcmp(r->str, answers[i].name, len) == 0 &&
            (r->len == len || r->str[len] == ' ')) {
            err = answers[i].err;
            skip = r->len == len ? len : len + 1;
            break;
        }
    }
    if (err == 0 && rest && cap > 0) {
        size_t len = r->len - skip < cap - 1 ? r->len - skip : cap - 1;
        memcpy(rest, r->str + skip, len);
        rest[len] = '\0';
    } else if (err == MK_EIO) {
        mk_fail(eb, MK_EIO, "redis: script: unexpected answer %.*s", (int)(r->len < 60 ? r->len : 60),
                r->str);
    } else if (err < 0) {
        mk_fail(eb, err, "%.*s", (int)(r->len - skip < 200 ? r->len - skip : 200), r->str + skip);
    }
    freeReplyObject(r);
    return err;
}

/* Page callbacks read members as strings: a reply that holds anything
 * else is refused before they see it. */
static bool redis_all_strings(const redisReply *r)
{
    for (size_t i = 0; i < r->elements; i++) {
        if (!r->element[i] || r->element[i]->type != REDIS_REPLY_STRING) {
            return false;
        }
    }
    return true;
}

int redis_walk_lex(struct redis_store *s, const char *key, const char *min, size_t minlen,
                   const char *max, size_t maxlen, redis_page_fn fn, void *arg,
                   struct mk_errbuf *eb)
{
    /* "(" + the last member seen: at most 1 + the longest member we write. */
    char cursor[1 + 256];
    size_t clen = minlen < sizeof(cursor) ? minlen : sizeof(cursor);
    memcpy(cursor, min, clen);
    for (;;) {
        redisReply *r;
        int err = redis_cmd(s, &r, eb, "ZRANGEBYLEX %s %b %b LIMIT 0 %d", key, cursor, clen, max,
                            maxlen, REDIS_PAGE);
        if (err < 0) {
            return err;
        }
        if (r->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            return mk_fail(eb, MK_EIO, "redis: %s is not a sorted set", key);
        }
        size_t n = r->elements;
        if (n > REDIS_PAGE || !redis_all_strings(r)) {
            freeReplyObject(r);
            return mk_fail(eb, MK_EIO, "redis: %s: more members than asked for", key);
        }
        const redisReply *last = n ? r->element[n - 1] : NULL;
        if (last && (last->type != REDIS_REPLY_STRING || last->len >= sizeof(cursor) - 1)) {
            freeReplyObject(r);
            return mk_fail(eb, MK_EIO, "redis: %s holds a member this mika did not write", key);
        }
        err = n ? fn(s, r, arg, eb) : 0;
        if (last) {
            cursor[0] = '(';
            memcpy(cursor + 1, last->str, last->len);
            clen = last->len + 1;
        }
        freeReplyObject(r);
        if (err < 0 || n < REDIS_PAGE) {
            return err;
        }
    }
}

/* Scores here are whole numbers (ids, unix seconds) well below 2^53. */
static int64_t redis_score(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 30) {
        return 0;
    }
    char num[32];
    memcpy(num, r->str, r->len);
    num[r->len] = '\0';
    return (int64_t)strtod(num, NULL);
}

int redis_walk_score(struct redis_store *s, const char *key, int64_t min, redis_page_fn fn,
                     void *arg, struct mk_errbuf *eb)
{
    /* The cursor is (score, how many members with that score were seen):
     * no page is read twice and none is skipped, without an offset that
     * grows with the set. */
    int64_t score = min;
    size_t same = 0;
    for (;;) {
        redisReply *r;
        int err = redis_cmd(s, &r, eb, "ZRANGEBYSCORE %s %lld +inf WITHSCORES LIMIT %llu %d", key,
                            (long long)score, (unsigned long long)same, REDIS_PAGE);
        if (err < 0) {
            return err;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 || r->elements > 2 * REDIS_PAGE ||
            !redis_all_strings(r)) {
            freeReplyObject(r);
            return mk_fail(eb, MK_EIO, "redis: %s: not a sorted set page", key);
        }
        size_t n = r->elements / 2;
        err = n ? fn(s, r, arg, eb) : 0;
        for (size_t i = 0; i < n; i++) {
            int64_t sc = redis_score(r->element[2 * i + 1]);
            same = sc == score ? same + 1 : 1;
            score = sc;
        }
        freeReplyObject(r);
        if (err < 0 || n < REDIS_PAGE) {
            return err;
        }
    }
}

/* ---- layout ------------------------------------------------------------------ */

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

/* The same list as the sqlite and postgres backends seed (docs/STORES.md). */
static const struct {
    const char *prefix;
    const char *name;
} redis_default_whitelist[] = {
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

static int redis_migrate(struct redis_store *s, struct mk_errbuf *eb)
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
    for (size_t i = 0; i < sizeof(redis_default_whitelist) / sizeof(redis_default_whitelist[0]);
         i++) {
        redis_arg_str(&a, redis_default_whitelist[i].prefix);
        redis_arg_str(&a, redis_default_whitelist[i].name);
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

static void redis_close(void *ctx)
{
    struct redis_store *s = ctx;
    if (!s) {
        return;
    }
    redis_drop(s);
    memset(s->pass, 0, sizeof(s->pass));
    free(s);
}

static int redis_open(void **ctx, const struct store_cfg *cfg, struct mk_errbuf *eb)
{
    if (!cfg || !cfg->dsn || !*cfg->dsn) {
        return mk_fail(eb, MK_EINVAL, "redis: no dsn (redis://[:password@]host[:port][/db])");
    }
    struct redis_store *s = calloc(1, sizeof(*s));
    if (!s) {
        return mk_fail(eb, MK_ENOMEM, "redis: out of memory");
    }
    int err = redis_dsn_parse(s, cfg->dsn, eb);
    if (err == 0) {
        err = redis_connect(s, eb);
    }
    if (err == 0) {
        err = redis_migrate(s, eb);
    }
    if (err < 0) {
        redis_close(s);
        return err;
    }
    mk_log(MK_LOG_DEBUG, "store.redis", "open: %s:%d/%d", s->host, s->port, s->db);
    *ctx = s;
    return 0;
}

/* ---- loaders ------------------------------------------------------------------ */

/* The caller's callback for one load: exactly one of the fn fields is set. */
struct redis_sink {
    store_user_fn user;
    store_torrent_fn torrent;
    store_whitelist_fn whitelist;
    store_snatch_fn snatch;
    store_peer_fn peer;
    const struct redis_classes *classes;
    struct user_rec *recs; /* load_users: REDIS_PAGE of them */
    void *arg;
};

/* An id that fits the tracker's uint32 ids (UINT32_MAX is reserved by u32set). */
static bool redis_id_ok(int64_t id)
{
    return id > 0 && id < (int64_t)UINT32_MAX;
}

static bool redis_passkey_ok(const char *pk)
{
    size_t len = strlen(pk);
    if (len == 0 || len > MK_PASSKEY_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)pk[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
            return false;
        }
    }
    return true;
}

static int redis_users_page(struct redis_store *s, const redisReply *page, void *arg,
                            struct mk_errbuf *eb)
{
    const struct redis_sink *sink = arg;
    uint32_t ids[REDIS_PAGE] = {0};
    bool found[REDIS_PAGE];
    size_t n = 0;
    for (size_t i = 0; i < page->elements / 2; i++) {
        int64_t id = redis_i64(page->element[2 * i]);
        if (!redis_id_ok(id)) {
            mk_log(MK_LOG_WARN, "store.redis", "users index member %" PRId64 " skipped: bad id",
                   id);
            continue;
        }
        ids[n++] = (uint32_t)id;
    }
    int err = redis_users_fetch(s, ids, n, sink->classes, false, sink->recs, found, eb);
    for (size_t i = 0; err == 0 && i < n; i++) {
        if (!found[i]) {
            continue; /* deleted since the index was read */
        }
        if (!redis_passkey_ok(sink->recs[i].row.passkey)) {
            mk_log(MK_LOG_WARN, "store.redis",
                   "user %" PRIu32 " skipped: passkey is not 1..%d of [A-Za-z0-9]", ids[i],
                   MK_PASSKEY_MAX);
            continue;
        }
        err = sink->user(&sink->recs[i].row, sink->arg);
        if (err > 0) {
            err = 0;
        } else if (err < 0) {
            mk_fail(eb, err, "redis: loading users stopped by the caller");
        }
    }
    return err;
}

static int redis_load_users(void *ctx, store_user_fn fn, void *arg, struct mk_errbuf *eb)
{
    struct redis_store *s = ctx;
    struct redis_classes cls;
    int err = redis_classes_load(s, &cls, eb);
    if (err < 0) {
        return err;
    }
    struct user_rec *recs = calloc(REDIS_PAGE, sizeof(*recs));
    if (!recs) {
        redis_classes_fini(&cls);
        return mk_fail(eb, MK_ENOMEM, "redis: out of memory");
    }
    struct redis_sink sink = {.user = fn, .classes = &cls, .recs = recs, .arg = arg};
    err = redis_walk_score(s, REDIS_PREFIX "users", 0, redis_users_page, &sink, eb);
    free(recs);
    redis_classes_fini(&cls);
    return err;
}

static int redis_torrents_page(struct redis_store *s, const redisReply *page, void *arg,
                               struct mk_errbuf *eb)
{
    const struct redis_sink *sink = arg;
    size_t n = page->elements / 2;
    for (size_t i = 0; i < n; i++) {
        const redisReply *ih = page->element[2 * i];
        int err = redis_append(s, eb,
                               "HMGET " REDIS_PREFIX "torrent:%b id enabled deleted reason"
                               " snatches freeleech up_mult down_mult size",
                               ih->str, ih->len);
        if (err < 0) {
            return err;
        }
    }
    redisReply *rows[REDIS_PAGE];
    int err = redis_get_all(s, rows, n, eb);
    for (size_t i = 0; err == 0 && i < n; i++) {
        const redisReply *ih = page->element[2 * i], *r = rows[i];
        int64_t id = redis_i64(redis_el(r, 0));
        if (redis_isnil(redis_el(r, 0))) {
            continue;
        }
        if (ih->len != 20 || !redis_id_ok(id)) {
            mk_log(MK_LOG_WARN, "store.redis",
                   "torrent %" PRId64 " skipped: info_hash is %zu bytes or id out of range", id,
                   ih->len);
            continue;
        }
        struct torrent_row row = {
            .id = (uint32_t)id,
            .enabled = redis_bool(redis_el(r, 1)),
            .deleted = redis_bool(redis_el(r, 2)),
            .snatches = redis_u32(redis_el(r, 4), UINT32_MAX),
            .has_mults = true,
            .freeleech = redis_bool(redis_el(r, 5)),
            .up_mult = redis_u32(redis_el(r, 6), MK_MULT_MAX),
            .down_mult = redis_u32(redis_el(r, 7), MK_MULT_MAX),
            .size = redis_u64(redis_el(r, 8)),
        };
        memcpy(row.info_hash, ih->str, 20);
        if (redis_text(redis_el(r, 3), row.reason, sizeof(row.reason))) {
            mk_log(MK_LOG_WARN, "store.redis", "torrent %" PRId64 ": reason cut to %zu bytes", id,
                   strlen(row.reason));
        }
        err = sink->torrent(&row, sink->arg);
        if (err < 0) {
            mk_fail(eb, err, "redis: loading torrents stopped by the caller");
        }
        err = err > 0 ? 0 : err;
    }
    redis_replies_free(rows, n);
    return err;
}

static int redis_load_torrents(void *ctx, store_torrent_fn fn, void *arg, struct mk_errbuf *eb)
{
    struct redis_sink sink = {.torrent = fn, .arg = arg};
    return redis_walk_score(ctx, REDIS_PREFIX "torrents", 0, redis_torrents_page, &sink, eb);
}

static int redis_whitelist_page(struct redis_store *s, const redisReply *page, void *arg,
                                struct mk_errbuf *eb)
{
    const struct redis_sink *sink = arg;
    size_t n = page->elements;
    for (size_t i = 0; i < n; i++) {
        int err = redis_append(s, eb, "HGET " REDIS_PREFIX "whitelist:names %b",
                               page->element[i]->str, page->element[i]->len);
        if (err < 0) {
            return err;
        }
    }
    redisReply *names[REDIS_PAGE];
    int err = redis_get_all(s, names, n, eb);
    for (size_t i = 0; err == 0 && i < n; i++) {
        const redisReply *p = page->element[i];
        if (p->len == 0 || p->len > MK_PREFIX_MAX) {
            mk_log(MK_LOG_WARN, "store.redis", "whitelist prefix skipped: %zu bytes (1..%d)",
                   p->len, MK_PREFIX_MAX);
            continue;
        }
        struct whitelist_row row = {.prefix_len = (uint8_t)p->len};
        memcpy(row.prefix, p->str, p->len);
        redis_text(names[i], row.name, sizeof(row.name));
        err = sink->whitelist(&row, sink->arg);
        if (err < 0) {
            mk_fail(eb, err, "redis: loading the whitelist stopped by the caller");
        }
        err = err > 0 ? 0 : err;
    }
    redis_replies_free(names, n);
    return err;
}

static int redis_load_whitelist(void *ctx, store_whitelist_fn fn, void *arg, struct mk_errbuf *eb)
{
    struct redis_sink sink = {.whitelist = fn, .arg = arg};
    return redis_walk_lex(ctx, REDIS_PREFIX "whitelist", "-", 1, "+", 1, redis_whitelist_page,
                          &sink, eb);
}

/* "tid:uid", each zero-padded to 10 digits (the snatches index member). */
static bool redis_pair_parse(const redisReply *m, uint32_t *a, uint32_t *b)
{
    if (!m || m->type != REDIS_REPLY_STRING || m->len != 21 || m->str[10] != ':') {
        return false;
    }
    char num[11];
    memcpy(num, m->str, 10);
    num[10] = '\0';
    unsigned long long x = strtoull(num, NULL, 10);
    memcpy(num, m->str + 11, 10);
    unsigned long long y = strtoull(num, NULL, 10);
    if (!redis_id_ok((int64_t)x) || !redis_id_ok((int64_t)y)) {
        return false;
    }
    *a = (uint32_t)x;
    *b = (uint32_t)y;
    return true;
}

static int redis_snatches_page(struct redis_store *s, const redisReply *page, void *arg,
                               struct mk_errbuf *eb)
{
    const struct redis_sink *sink = arg;
    size_t n = page->elements;
    uint32_t tid[REDIS_PAGE], uid[REDIS_PAGE];
    bool ok[REDIS_PAGE];
    int err = 0;
    for (size_t i = 0; err == 0 && i < n; i++) {
        ok[i] = redis_pair_parse(page->element[i], &tid[i], &uid[i]);
        if (!ok[i]) {
            tid[i] = uid[i] = 0;
        }
        err = redis_append(s, eb, "HGET " REDIS_PREFIX "user:%u:snatches %u", uid[i], tid[i]);
        if (err == 0) {
            err = redis_append(s, eb, "ZRANGEBYSCORE " REDIS_PREFIX "torrents %u %u LIMIT 0 1",
                               tid[i], tid[i]);
        }
    }
    if (err < 0) {
        return err;
    }
    redisReply *rows[2 * REDIS_PAGE];
    err = redis_get_all(s, rows, 2 * n, eb);
    for (size_t i = 0; err == 0 && i < n; i++) {
        if (!ok[i] || redis_isnil(rows[2 * i])) {
            continue;
        }
        struct snatch_row row = {.user_id = uid[i], .torrent_id = tid[i],
                                 .at = redis_i64(rows[2 * i])};
        const redisReply *ih = redis_el(rows[2 * i + 1], 0);
        if (ih && ih->type == REDIS_REPLY_STRING && ih->len == 20) {
            memcpy(row.info_hash, ih->str, 20);
        }
        err = sink->snatch(&row, sink->arg);
        if (err < 0) {
            mk_fail(eb, err, "redis: loading snatches stopped by the caller");
        }
        err = err > 0 ? 0 : err;
    }
    redis_replies_free(rows, 2 * n);
    return err;
}

static int redis_load_snatches(void *ctx, store_snatch_fn fn, void *arg, struct mk_errbuf *eb)
{
    struct redis_sink sink = {.snatch = fn, .arg = arg};
    return redis_walk_lex(ctx, REDIS_PREFIX "snatches", "-", 1, "+", 1, redis_snatches_page,
                          &sink, eb);
}

/* A peer's member in mika:peers and its key: torrent id and user id (4 bytes
 * each, big-endian) then the 20-byte peer_id. */
#define REDIS_PEER_KEY 28

static uint32_t redis_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int redis_peers_page(struct redis_store *s, const redisReply *page, void *arg,
                            struct mk_errbuf *eb)
{
    const struct redis_sink *sink = arg;
    size_t n = page->elements / 2;
    int err = 0;
    for (size_t i = 0; err == 0 && i < n; i++) {
        const redisReply *m = page->element[2 * i];
        uint32_t tid = m->len == REDIS_PEER_KEY ? redis_be32((const unsigned char *)m->str) : 0;
        err = redis_append(s, eb,
                           "HMGET " REDIS_PREFIX "peer:%b family ip port uploaded downloaded"
                           " seeder partial last_seen gone",
                           m->str, m->len);
        if (err == 0) {
            err = redis_append(s, eb, "ZRANGEBYSCORE " REDIS_PREFIX "torrents %u %u LIMIT 0 1",
                               tid, tid);
        }
    }
    if (err < 0) {
        return err;
    }
    redisReply *rows[2 * REDIS_PAGE];
    err = redis_get_all(s, rows, 2 * n, eb);
    for (size_t i = 0; err == 0 && i < n; i++) {
        const redisReply *m = page->element[2 * i], *r = rows[2 * i];
        if (redis_isnil(redis_el(r, 0)) || redis_bool(redis_el(r, 8))) {
            continue; /* pruned since the index was read, or gone */
        }
        const unsigned char *k = (const unsigned char *)m->str;
        int64_t family = redis_i64(redis_el(r, 0)), port = redis_i64(redis_el(r, 2));
        const redisReply *ip = redis_el(r, 1);
        size_t iplen = ip && ip->type == REDIS_REPLY_STRING ? ip->len : 0;
        if (m->len != REDIS_PEER_KEY || !redis_id_ok(redis_be32(k)) ||
            !redis_id_ok(redis_be32(k + 4)) ||
            !((family == 4 && iplen == 4) || (family == 6 && iplen == 16)) || port < 1 ||
            port > 65535) {
            mk_log(MK_LOG_WARN, "store.redis", "peer skipped: malformed");
            continue;
        }
        struct peer_row row;
        memset(&row, 0, sizeof(row));
        row.torrent_id = redis_be32(k);
        row.user_id = redis_be32(k + 4);
        memcpy(row.peer_id, k + 8, 20);
        row.family = (uint8_t)family;
        memcpy(row.ip, ip->str, iplen);
        row.port = (uint16_t)port;
        row.uploaded = redis_u64(redis_el(r, 3));
        row.downloaded = redis_u64(redis_el(r, 4));
        row.seeder = redis_bool(redis_el(r, 5));
        row.partial = redis_bool(redis_el(r, 6));
        row.last_seen = redis_i64(redis_el(r, 7));
        const redisReply *ih = redis_el(rows[2 * i + 1], 0);
        if (ih && ih->type == REDIS_REPLY_STRING && ih->len == 20) {
            memcpy(row.info_hash, ih->str, 20);
        }
        err = sink->peer(&row, sink->arg);
        if (err < 0) {
            mk_fail(eb, err, "redis: loading peers stopped by the caller");
        }
        err = err > 0 ? 0 : err;
    }
    redis_replies_free(rows, 2 * n);
    return err;
}

static int redis_load_peers(void *ctx, int64_t seen_since, store_peer_fn fn, void *arg,
                            struct mk_errbuf *eb)
{
    struct redis_sink sink = {.peer = fn, .arg = arg};
    return redis_walk_score(ctx, REDIS_PREFIX "peers", seen_since, redis_peers_page, &sink, eb);
}

/* Deletes one page of peers last seen before ARGV[1]; answers how many. */
static const char REDIS_PRUNE[] =
    "local m = redis.call('ZRANGEBYSCORE', 'mika:peers', '-inf', '(' .. ARGV[1],\n"
    "                     'LIMIT', 0, tonumber(ARGV[2]))\n"
    "for _, k in ipairs(m) do\n"
    "  redis.call('DEL', 'mika:peer:' .. k)\n"
    "  redis.call('ZREM', 'mika:peers', k)\n"
    "end\n"
    "return 'OK ' .. #m\n";

static int redis_prune_peers(void *ctx, int64_t seen_before, struct mk_errbuf *eb)
{
    /* A page per script: the server is never held for the whole set. */
    for (;;) {
        struct redis_args a;
        redis_args_init(&a);
        redis_arg_i64(&a, seen_before);
        redis_arg_i64(&a, REDIS_PAGE);
        char done[24] = "";
        int err = redis_eval(ctx, REDIS_PRUNE, &a, done, sizeof(done), eb);
        redis_args_fini(&a);
        if (err < 0 || strtol(done, NULL, 10) < REDIS_PAGE) {
            return err;
        }
    }
}

/* ---- a user's history and suspicious uploads, a page at a time ------------ */

/* Reads [offset, offset + want) of a user's index (newest first) and its
 * size, in one MULTI/EXEC so the count and the page agree. *page gets the
 * WITHSCORES array (caller frees). */
static int redis_user_range(struct redis_store *s, const char *key, uint64_t offset,
                            uint32_t want, uint64_t *total, redisReply **page,
                            struct mk_errbuf *eb)
{
    offset = offset > INT64_MAX / 2 ? INT64_MAX / 2 : offset;
    uint64_t stop = offset + (want ? want : 1) - 1;
    int err = redis_append(s, eb, "MULTI");
    if (err == 0) {
        err = redis_append(s, eb, "ZCARD %s", key);
    }
    if (err == 0) {
        err = redis_append(s, eb, "ZREVRANGE %s %llu %llu WITHSCORES", key,
                           (unsigned long long)offset, (unsigned long long)stop);
    }
    if (err == 0) {
        err = redis_append(s, eb, "EXEC");
    }
    if (err < 0) {
        return err;
    }
    redisReply *r[4];
    err = redis_get_all(s, r, 4, eb);
    if (err < 0) {
        return err;
    }
    redisReply *ex = r[3];
    if (ex->type != REDIS_REPLY_ARRAY || ex->elements != 2 ||
        ex->element[1]->type != REDIS_REPLY_ARRAY || ex->element[1]->elements % 2 ||
        ex->element[1]->elements > 2 * (size_t)(want ? want : 1)) {
        err = mk_fail(eb, MK_EIO, "redis: %s: unexpected reply", key);
    } else {
        *total = redis_u64(ex->element[0]);
        *page = ex->element[1];
        ex->element[1] = NULL; /* taken: freeReplyObject skips NULL elements */
    }
    redis_replies_free(r, 4);
    return err;
}

struct redis_tih {
    bool found;
    uint8_t ih[20];
    uint64_t size;
};

/* The info_hash and size of torrents tids[0..n), two round trips. */
static int redis_torrents_name(struct redis_store *s, const uint32_t *tids, size_t n,
                               struct redis_tih *out, struct mk_errbuf *eb)
{
    memset(out, 0, n * sizeof(*out));
    int err = 0;
    for (size_t i = 0; err == 0 && i < n; i++) {
        err = redis_append(s, eb, "ZRANGEBYSCORE " REDIS_PREFIX "torrents %u %u LIMIT 0 1",
                           tids[i], tids[i]);
    }
    redisReply *r[REDIS_PAGE];
    if (err < 0 || (err = redis_get_all(s, r, n, eb)) < 0) {
        return err;
    }
    for (size_t i = 0; err == 0 && i < n; i++) {
        const redisReply *ih = redis_el(r[i], 0);
        out[i].found = ih && ih->type == REDIS_REPLY_STRING && ih->len == 20;
        if (out[i].found) {
            memcpy(out[i].ih, ih->str, 20);
            err = redis_append(s, eb, "HGET " REDIS_PREFIX "torrent:%b size", ih->str,
                               (size_t)20);
        }
    }
    redis_replies_free(r, n);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        m += out[i].found;
    }
    if (err < 0 || (err = redis_get_all(s, r, m, eb)) < 0) {
        return err;
    }
    for (size_t i = 0, j = 0; i < n; i++) {
        if (out[i].found) {
            out[i].size = redis_u64(r[j++]);
        }
    }
    redis_replies_free(r, m);
    return 0;
}

static int redis_user_history(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
                              store_history_fn fn, void *arg, uint64_t *total,
                              struct mk_errbuf *eb)
{
    struct redis_store *s = ctx;
    char key[64];
    snprintf(key, sizeof(key), REDIS_PREFIX "user:%u:history", user_id);
    redisReply *page = NULL;
    uint32_t want = limit < REDIS_PAGE ? limit : REDIS_PAGE;
    int err = redis_user_range(s, key, offset, want, total, &page, eb);
    /* The API's pages are small; past REDIS_PAGE rows the rest is cut. */
    size_t n = err == 0 && want ? page->elements / 2 : 0;
    uint32_t tids[REDIS_PAGE];
    for (size_t i = 0; i < n; i++) {
        char hex[16];
        redis_text(page->element[2 * i], hex, sizeof(hex));
        tids[i] = UINT32_MAX - (uint32_t)strtoul(hex, NULL, 16);
        if (err == 0) {
            err = redis_append(s, eb,
                               "HMGET " REDIS_PREFIX "history:%u:%u uploaded downloaded"
                               " raw_uploaded raw_downloaded seed_time leech_time announces"
                               " first_announce last_announce completed_at",
                               user_id, tids[i]);
        }
    }
    redisReply *rows[REDIS_PAGE];
    bool have_rows = false;
    if (err == 0) {
        err = redis_get_all(s, rows, n, eb);
        have_rows = err == 0;
    }
    struct redis_tih *names = err == 0 ? calloc(n ? n : 1, sizeof(*names)) : NULL;
    if (err == 0 && !names) {
        err = mk_fail(eb, MK_ENOMEM, "redis: out of memory");
    }
    if (err == 0) {
        err = redis_torrents_name(s, tids, n, names, eb);
    }
    for (size_t i = 0; err == 0 && i < n; i++) {
        struct history_row row;
        memset(&row, 0, sizeof(row));
        row.torrent_id = tids[i];
        if (names[i].found) {
            memcpy(row.info_hash, names[i].ih, 20);
            row.size = names[i].size;
        }
        uint64_t *u64[] = {&row.uploaded, &row.downloaded, &row.raw_uploaded,
                           &row.raw_downloaded, &row.seed_time, &row.leech_time, &row.announces};
        for (size_t j = 0; j < 7; j++) {
            *u64[j] = redis_u64(redis_el(rows[i], j));
        }
        row.first_announce = redis_i64(redis_el(rows[i], 7));
        row.last_announce = redis_i64(redis_el(rows[i], 8));
        row.completed_at = redis_i64(redis_el(rows[i], 9));
        err = fn(&row, arg);
        err = err > 0 ? 0 : err;
    }
    if (have_rows) {
        redis_replies_free(rows, n);
    }
    free(names);
    if (page) {
        freeReplyObject(page);
    }
    return err;
}

/* A suspicious index member: "%016x:torrent_id:uploaded:reason"
 * (a sequence number first, so ties in time list the newest first). */
static bool redis_suspicious_parse(const redisReply *m, struct suspicious_row *row)
{
    char text[128];
    if (!m || m->type != REDIS_REPLY_STRING || redis_text(m, text, sizeof(text))) {
        return false;
    }
    char *p = strchr(text, ':');
    char *q = p ? strchr(p + 1, ':') : NULL;
    char *r = q ? strchr(q + 1, ':') : NULL;
    if (!r) {
        return false;
    }
    row->torrent_id = (uint32_t)strtoul(p + 1, NULL, 10);
    row->uploaded = strtoull(q + 1, NULL, 10);
    snprintf(row->reason, sizeof(row->reason), "%s", r + 1);
    return true;
}

static int redis_user_suspicious(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
                                 store_suspicious_fn fn, void *arg, uint64_t *total,
                                 struct mk_errbuf *eb)
{
    struct redis_store *s = ctx;
    char key[64];
    snprintf(key, sizeof(key), REDIS_PREFIX "user:%u:suspicious", user_id);
    redisReply *page = NULL;
    uint32_t want = limit < REDIS_PAGE ? limit : REDIS_PAGE;
    int err = redis_user_range(s, key, offset, want, total, &page, eb);
    if (err < 0) {
        return err;
    }
    size_t n = want ? page->elements / 2 : 0;
    struct suspicious_row *rows = calloc(n ? n : 1, sizeof(*rows));
    uint32_t *tids = calloc(n ? n : 1, sizeof(*tids));
    struct redis_tih *names = calloc(n ? n : 1, sizeof(*names));
    if (!rows || !tids || !names) {
        err = mk_fail(eb, MK_ENOMEM, "redis: out of memory");
    }
    for (size_t i = 0; err == 0 && i < n; i++) {
        if (!redis_suspicious_parse(page->element[2 * i], &rows[i])) {
            mk_log(MK_LOG_WARN, "store.redis", "user %" PRIu32 ": malformed suspicious row",
                   user_id);
        }
        rows[i].at = redis_score(page->element[2 * i + 1]);
        tids[i] = rows[i].torrent_id;
    }
    if (err == 0) {
        err = redis_torrents_name(s, tids, n, names, eb);
    }
    for (size_t i = 0; err == 0 && i < n; i++) {
        if (names[i].found) {
            memcpy(rows[i].info_hash, names[i].ih, 20);
        }
        err = fn(&rows[i], arg);
        err = err > 0 ? 0 : err;
    }
    free(rows);
    free(tids);
    free(names);
    freeReplyObject(page);
    return err;
}

/* ---- apply ---------------------------------------------------------------------- */

/* The whole batch, atomically: Redis runs a script alone, and this one
 * checks the segment first and then only writes, never fails half-way:
 * an overflowing HINCRBY saturates at 2^63-1 instead of raising. Counters
 * arrive as decimal strings and are never turned into Lua numbers (doubles
 * from 2^53 up); times and peer versions are (both below 2^53).
 * ARGV: segment field ("" for none), records, kinds, nusers, nhistory,
 * ntorrents, nevents, then the users (id and 8 counters), the history rows
 * (user, torrent, 7 counters, first, last), the torrents (id, transferred)
 * and the events: S user torrent at | X user torrent at uploaded reason |
 * P key family ip port uploaded downloaded seeder partial last_seen version gone. */
static const char REDIS_APPLY[] =
    "local a = ARGV\n"
    "local MAX = '9223372036854775807'\n"
    "local function add(k, f, v)\n"
    "  if v ~= '0' then\n"
    "    local r = redis.pcall('HINCRBY', k, f, v)\n"
    "    if type(r) == 'table' and r.err then redis.call('HSET', k, f, MAX) end\n"
    "  end\n"
    "end\n"
    "if a[1] ~= '' then\n"
    "  if redis.call('HSETNX', 'mika:journal_applied', a[1], a[2]) == 0 then\n"
    "    return 'EEXIST segment'\n"
    "  end\n"
    "end\n"
    "local kinds = tonumber(a[3])\n"
    "local users = kinds % 2 == 1\n"
    "local torrents = math.floor(kinds / 2) % 2 == 1\n"
    "local ihs = {}\n"
    "local function ih(tid)\n"
    "  if ihs[tid] == nil then\n"
    "    local m = redis.call('ZRANGEBYSCORE', 'mika:torrents', tid, tid, 'LIMIT', 0, 1)\n"
    "    ihs[tid] = m[1] or false\n"
    "  end\n"
    "  return ihs[tid]\n"
    "end\n"
    "local function hmember(tid)\n"
    "  return string.format('%08x', 4294967295 - tonumber(tid))\n"
    "end\n"
    "local UF = {'uploaded', 'downloaded', 'raw_uploaded', 'raw_downloaded', 'seed_time',\n"
    "            'leech_time', 'bonus', 'announces'}\n"
    "local i = 8\n"
    "for _ = 1, tonumber(a[4]) do\n"
    "  local k = 'mika:user:' .. a[i]\n"
    "  if redis.call('EXISTS', k) == 1 then\n"
    "    for j = 1, 8 do add(k, UF[j], a[i + j]) end\n"
    "  end\n"
    "  i = i + 9\n"
    "end\n"
    "for _ = 1, tonumber(a[5]) do\n"
    "  local uid, tid = a[i], a[i + 1]\n"
    "  local k = 'mika:history:' .. uid .. ':' .. tid\n"
    "  for j = 1, 6 do add(k, UF[j], a[i + 1 + j]) end\n"
    "  add(k, 'announces', a[i + 8])\n"
    "  local cur = redis.call('HMGET', k, 'first_announce', 'last_announce')\n"
    "  local first, last = a[i + 9], a[i + 10]\n"
    "  if cur[1] and tonumber(cur[1]) <= tonumber(first) then first = cur[1] end\n"
    "  if cur[2] and tonumber(cur[2]) >= tonumber(last) then last = cur[2] end\n"
    "  redis.call('HSET', k, 'first_announce', first, 'last_announce', last)\n"
    "  redis.call('ZADD', 'mika:user:' .. uid .. ':history', last, hmember(tid))\n"
    "  i = i + 11\n"
    "end\n"
    "for _ = 1, tonumber(a[6]) do\n"
    "  local h = ih(a[i])\n"
    "  if h then add('mika:torrent:' .. h, 'transferred', a[i + 1]) end\n"
    "  i = i + 2\n"
    "end\n"
    "for _ = 1, tonumber(a[7]) do\n"
    "  local t = a[i]\n"
    "  if t == 'S' then\n"
    "    local uid, tid, at = a[i + 1], a[i + 2], a[i + 3]\n"
    "    if redis.call('HSETNX', 'mika:user:' .. uid .. ':snatches', tid, at) == 1 then\n"
    "      redis.call('ZADD', 'mika:snatches', 0,\n"
    "                 string.format('%010d:%010d', tonumber(tid), tonumber(uid)))\n"
    "      local h = torrents and ih(tid)\n"
    "      if h then redis.call('HINCRBY', 'mika:torrent:' .. h, 'snatches', 1) end\n"
    "    end\n"
    "    if users then\n"
    "      local k = 'mika:history:' .. uid .. ':' .. tid\n"
    "      redis.call('HSETNX', k, 'completed_at', at)\n"
    "      redis.call('HSETNX', k, 'first_announce', at)\n"
    "      if redis.call('HSETNX', k, 'last_announce', at) == 1 then\n"
    "        redis.call('ZADD', 'mika:user:' .. uid .. ':history', at, hmember(tid))\n"
    "      end\n"
    "    end\n"
    "    i = i + 4\n"
    "  elseif t == 'X' then\n"
    "    local n = redis.call('INCR', 'mika:seq:suspicious')\n"
    "    redis.call('ZADD', 'mika:user:' .. a[i + 1] .. ':suspicious', a[i + 3],\n"
    "               string.format('%016x', n) .. ':' .. a[i + 2] .. ':' .. a[i + 4] .. ':' ..\n"
    "               a[i + 5])\n"
    "    i = i + 6\n"
    "  elseif t == 'P' then\n"
    "    local k = 'mika:peer:' .. a[i + 1]\n"
    "    local v = redis.call('HGET', k, 'version')\n"
    "    if not v or tonumber(a[i + 10]) > tonumber(v) then\n"
    "      redis.call('HSET', k, 'family', a[i + 2], 'ip', a[i + 3], 'port', a[i + 4],\n"
    "                 'uploaded', a[i + 5], 'downloaded', a[i + 6], 'seeder', a[i + 7],\n"
    "                 'partial', a[i + 8], 'last_seen', a[i + 9], 'version', a[i + 10],\n"
    "                 'gone', a[i + 11])\n"
    "      redis.call('ZADD', 'mika:peers', a[i + 9], a[i + 1])\n"
    "    end\n"
    "    i = i + 12\n"
    "  else\n"
    "    return redis.error_reply('mika: bad apply event ' .. tostring(t))\n"
    "  end\n"
    "end\n"
    "return 'OK'\n";

/* The batch summed per user, per (user, torrent) and per torrent, as the
 * postgres backend does: one HINCRBY per counter and row, not per delta. */
struct redis_user_sum {
    uint32_t id;
    uint64_t v[8]; /* credited up, down; raw up, down; seed, leech; bonus; announces */
};

struct redis_history_sum {
    uint32_t user_id, torrent_id;
    uint64_t v[7]; /* credited up, down; raw up, down; seed, leech; announces */
    int64_t first, last;
};

struct redis_torrent_sum {
    uint32_t id;
    uint64_t transferred;
};

static uint64_t redis_add_sat(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

/* Redis integers are signed 64-bit: a sum past it is stored as the maximum. */
static uint64_t redis_clamp(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : v;
}

static int redis_cmp_user(const void *a, const void *b)
{
    uint32_t x = ((const struct redis_user_sum *)a)->id;
    uint32_t y = ((const struct redis_user_sum *)b)->id;
    return x < y ? -1 : x > y;
}

static int redis_cmp_history(const void *a, const void *b)
{
    const struct redis_history_sum *x = a, *y = b;
    if (x->user_id != y->user_id) {
        return x->user_id < y->user_id ? -1 : 1;
    }
    return x->torrent_id < y->torrent_id ? -1 : x->torrent_id > y->torrent_id;
}

static int redis_cmp_torrent(const void *a, const void *b)
{
    uint32_t x = ((const struct redis_torrent_sum *)a)->id;
    uint32_t y = ((const struct redis_torrent_sum *)b)->id;
    return x < y ? -1 : x > y;
}

struct redis_sums {
    struct redis_user_sum *users;
    struct redis_history_sum *history;
    struct redis_torrent_sum *torrents;
    size_t nusers, nhistory, ntorrents;
};

static void redis_sums_free(struct redis_sums *m)
{
    free(m->users);
    free(m->history);
    free(m->torrents);
}

static int redis_sums_build(struct redis_sums *m, const struct acct_delta *rows, size_t n)
{
    memset(m, 0, sizeof(*m));
    m->users = calloc(n ? n : 1, sizeof(*m->users));
    m->history = calloc(n ? n : 1, sizeof(*m->history));
    m->torrents = calloc(n ? n : 1, sizeof(*m->torrents));
    if (!m->users || !m->history || !m->torrents) {
        redis_sums_free(m);
        return MK_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const struct acct_delta *d = &rows[i];
        uint64_t cu = d->has_credit ? d->credited_up : d->uploaded;
        uint64_t cd = d->has_credit ? d->credited_down : d->downloaded;
        if (d->uploaded || d->downloaded || cu || cd || d->seed_seconds || d->leech_seconds ||
            d->bonus || d->announces) {
            m->users[m->nusers++] = (struct redis_user_sum){
                .id = d->user_id,
                .v = {cu, cd, d->uploaded, d->downloaded, d->seed_seconds, d->leech_seconds,
                      d->bonus, d->announces}};
        }
        if (d->announces) {
            m->history[m->nhistory++] = (struct redis_history_sum){
                .user_id = d->user_id,
                .torrent_id = d->torrent_id,
                .v = {cu, cd, d->uploaded, d->downloaded, d->seed_seconds, d->leech_seconds,
                      d->announces},
                .first = d->first_at ? d->first_at : d->at,
                .last = d->at};
            if (d->downloaded) {
                m->torrents[m->ntorrents++] =
                    (struct redis_torrent_sum){.id = d->torrent_id, .transferred = d->downloaded};
            }
        }
    }
    qsort(m->users, m->nusers, sizeof(*m->users), redis_cmp_user);
    qsort(m->history, m->nhistory, sizeof(*m->history), redis_cmp_history);
    qsort(m->torrents, m->ntorrents, sizeof(*m->torrents), redis_cmp_torrent);
    size_t k = 0;
    for (size_t i = 0; i < m->nusers; i++) {
        if (k > 0 && m->users[k - 1].id == m->users[i].id) {
            for (int j = 0; j < 8; j++) {
                m->users[k - 1].v[j] = redis_add_sat(m->users[k - 1].v[j], m->users[i].v[j]);
            }
        } else {
            m->users[k++] = m->users[i];
        }
    }
    m->nusers = k;
    k = 0;
    for (size_t i = 0; i < m->nhistory; i++) {
        struct redis_history_sum *h = &m->history[i];
        if (k > 0 && redis_cmp_history(&m->history[k - 1], h) == 0) {
            struct redis_history_sum *a = &m->history[k - 1];
            for (int j = 0; j < 7; j++) {
                a->v[j] = redis_add_sat(a->v[j], h->v[j]);
            }
            a->first = h->first < a->first ? h->first : a->first;
            a->last = h->last > a->last ? h->last : a->last;
        } else {
            m->history[k++] = *h;
        }
    }
    m->nhistory = k;
    k = 0;
    for (size_t i = 0; i < m->ntorrents; i++) {
        if (k > 0 && m->torrents[k - 1].id == m->torrents[i].id) {
            m->torrents[k - 1].transferred =
                redis_add_sat(m->torrents[k - 1].transferred, m->torrents[i].transferred);
        } else {
            m->torrents[k++] = m->torrents[i];
        }
    }
    m->ntorrents = k;
    return 0;
}

/* What is written per announce, not summed: a snatch, a suspicious upload,
 * the peer's newest report. Answers how many events it added. */
static size_t redis_args_events(struct redis_args *a, uint32_t kinds, const struct acct_delta *d)
{
    size_t n = 0;
    /* Both users' and torrents' backends keep the snatch row: the counter
     * moves only when the row is new (store.h, kinds). */
    if (d->snatch && (kinds & (STORE_KIND_USERS | STORE_KIND_TORRENTS))) {
        redis_arg_str(a, "S");
        redis_arg_u64(a, d->user_id);
        redis_arg_u64(a, d->torrent_id);
        redis_arg_i64(a, d->at);
        n++;
    }
    if (d->suspicious && (kinds & STORE_KIND_USERS)) {
        static const char *const reasons[] = {"", "no_leechers", "too_fast", "unknown"};
        redis_arg_str(a, "X");
        redis_arg_u64(a, d->user_id);
        redis_arg_u64(a, d->torrent_id);
        redis_arg_i64(a, d->at);
        redis_arg_u64(a, redis_clamp(d->suspicious_up));
        redis_arg_str(a, reasons[d->suspicious & 3]);
        n++;
    }
    if (d->has_peer && (kinds & STORE_KIND_PEERS)) {
        const struct peer_row *pr = &d->peer;
        unsigned char key[REDIS_PEER_KEY];
        uint32_t ids[2] = {d->torrent_id, d->user_id};
        for (int j = 0; j < 2; j++) {
            key[4 * j] = (unsigned char)(ids[j] >> 24);
            key[4 * j + 1] = (unsigned char)(ids[j] >> 16);
            key[4 * j + 2] = (unsigned char)(ids[j] >> 8);
            key[4 * j + 3] = (unsigned char)ids[j];
        }
        memcpy(key + 8, pr->peer_id, 20);
        redis_arg_str(a, "P");
        redis_arg(a, key, sizeof(key));
        redis_arg_u64(a, pr->family == 6 ? 6 : 4);
        redis_arg(a, pr->ip, pr->family == 6 ? 16 : 4);
        redis_arg_u64(a, pr->port);
        redis_arg_u64(a, redis_clamp(pr->uploaded));
        redis_arg_u64(a, redis_clamp(pr->downloaded));
        redis_arg_u64(a, pr->seeder);
        redis_arg_u64(a, pr->partial);
        redis_arg_i64(a, pr->last_seen);
        redis_arg_i64(a, pr->version);
        redis_arg_u64(a, pr->gone);
        n++;
    }
    return n;
}

static int redis_apply_batch(struct redis_store *s, const struct store_segment_id *once,
                             const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    uint32_t kinds = once && once->kinds ? once->kinds : STORE_KIND_ALL;
    struct redis_sums m;
    if (redis_sums_build(&m, rows, n) < 0) {
        return mk_fail(eb, MK_ENOMEM, "redis: out of memory summing %zu deltas", n);
    }
    bool users = kinds & STORE_KIND_USERS, torrents = kinds & STORE_KIND_TORRENTS;
    size_t nusers = users ? m.nusers : 0, nhistory = users ? m.nhistory : 0;
    size_t ntorrents = torrents ? m.ntorrents : 0;
    /* The events go first into their own list: their count is a header. */
    struct redis_args ev, a;
    redis_args_init(&ev);
    redis_args_init(&a);
    size_t nevents = 0;
    for (size_t i = 0; i < n; i++) {
        nevents += redis_args_events(&ev, kinds, &rows[i]);
    }
    if (once) {
        char field[80];
        snprintf(field, sizeof(field), "%" PRIu64 ":%" PRIu32 ":%" PRIu64, once->boot,
                 once->writer, once->seq);
        redis_arg_str(&a, field);
        redis_arg_u64(&a, once->records ? once->records : n);
    } else {
        redis_arg_str(&a, "");
        redis_arg_str(&a, "0");
    }
    redis_arg_u64(&a, kinds);
    redis_arg_u64(&a, nusers);
    redis_arg_u64(&a, nhistory);
    redis_arg_u64(&a, ntorrents);
    redis_arg_u64(&a, nevents);
    for (size_t i = 0; i < nusers; i++) {
        redis_arg_u64(&a, m.users[i].id);
        for (int j = 0; j < 8; j++) {
            redis_arg_u64(&a, redis_clamp(m.users[i].v[j]));
        }
    }
    for (size_t i = 0; i < nhistory; i++) {
        const struct redis_history_sum *h = &m.history[i];
        redis_arg_u64(&a, h->user_id);
        redis_arg_u64(&a, h->torrent_id);
        for (int j = 0; j < 7; j++) {
            redis_arg_u64(&a, redis_clamp(h->v[j]));
        }
        redis_arg_i64(&a, h->first);
        redis_arg_i64(&a, h->last);
    }
    for (size_t i = 0; i < ntorrents; i++) {
        redis_arg_u64(&a, m.torrents[i].id);
        redis_arg_u64(&a, redis_clamp(m.torrents[i].transferred));
    }
    for (size_t i = 0; i < ev.n; i++) {
        redis_arg(&a, ev.v[i], ev.len[i]);
    }
    a.oom = a.oom || ev.oom;
    redis_sums_free(&m);
    redis_args_fini(&ev);
    int err = redis_eval(s, REDIS_APPLY, &a, NULL, 0, eb);
    redis_args_fini(&a);
    if (err == MK_EEXIST && once) {
        return mk_fail(eb, MK_EEXIST,
                       "redis: segment %" PRIu64 "/%" PRIu32 "/%" PRIu64 " was applied before",
                       once->boot, once->writer, once->seq);
    }
    return err;
}

static int redis_apply(void *ctx, const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    return redis_apply_batch(ctx, NULL, rows, n, eb);
}

static int redis_apply_segment(void *ctx, const struct store_segment_id *id,
                               const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    return redis_apply_batch(ctx, id, rows, n, eb);
}

const struct store_ops store_redis_ops = {
    .version = MK_STORE_V3,
    .name = "redis",
    .open = redis_open,
    .close = redis_close,
    .load_users = redis_load_users,
    .load_torrents = redis_load_torrents,
    .load_whitelist = redis_load_whitelist,
    .load_snatches = redis_load_snatches,
    .apply = redis_apply,
    .apply_segment = redis_apply_segment,
    .ping = redis_admin_ping,
    .user_get = redis_admin_user_get,
    .user_get_by_passkey = redis_admin_user_get_by_passkey,
    .user_list = redis_admin_user_list,
    .user_insert = redis_admin_user_insert,
    .user_update = redis_admin_user_update,
    .user_delete = redis_admin_user_delete,
    .torrent_get = redis_admin_torrent_get,
    .torrent_insert = redis_admin_torrent_insert,
    .torrent_update = redis_admin_torrent_update,
    .whitelist_insert = redis_admin_whitelist_insert,
    .whitelist_delete = redis_admin_whitelist_delete,
    .class_list = redis_admin_class_list,
    .class_get = redis_admin_class_get,
    .class_insert = redis_admin_class_insert,
    .class_update = redis_admin_class_update,
    .class_delete = redis_admin_class_delete,
    .settings_load = redis_admin_settings_load,
    .settings_put = redis_admin_settings_put,
    .load_peers = redis_load_peers,
    .prune_peers = redis_prune_peers,
    .user_history = redis_user_history,
    .user_suspicious = redis_user_suspicious,
    .load_tokens = redis_admin_load_tokens,
    .token_put = redis_admin_token_put,
    .token_delete = redis_admin_token_delete,
    .torrent_get_by_id = redis_admin_torrent_get_by_id,
};
