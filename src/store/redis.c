/* store/redis.c: the "redis" store backend (hiredis), for state shared by
 * several tracker nodes.
 *
 * Owns: the DSN (redis://[[user]:pass@]host[:port][/db]), one connection per
 * open store (dropped on loss, made again by the next call) with its AUTH and
 * SELECT, the Lua scripts' SHA cache (EVALSHA, EVAL on NOSCRIPT), the paged
 * walks every load uses, and the ops table.
 * Not here: the key layout's version and its migration (redis_layout.c),
 * the loaders (redis_load.c), the books (redis_apply.c), the admin
 * API's methods (redis_admin.c, redis_meta.c), retrying an unavailable
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
 * scripts (and the walks), open and close, the ops table.
 */
#include "store/redis_admin.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "util/log.h"
#include "util/text.h"

#define REDIS_SCRIPTS_MAX 32
#define REDIS_CONNECT_MS 2000
/* Longest a command may take: a whole journal segment is one script. */
#define REDIS_COMMAND_MS 10000

struct redis_sha {
    const char *src; /* a string literal: its address is the key */
    char sha[41];
};

struct redis_store {
    redisContext *c; /* NULL: connect at the next call */
    struct redis_dsn dsn; /* pass is never logged */
    bool was_up;
    bool subscribed; /* SUBSCRIBE sent on this connection (store/redis_notify.c) */
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
    return mk_copy_text(out, cap, p, len);
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
int redis_dsn_parse(const char *dsn, struct redis_dsn *s, struct mk_errbuf *eb)
{
    static const char scheme[] = "redis://";
    if (strncmp(dsn, scheme, sizeof(scheme) - 1) != 0) {
        return mk_fail(eb, MK_EINVAL, "redis: dsn must start with redis:// "
                                      "(redis://[:password@]host[:port][/db])");
    }
    memset(s, 0, sizeof(*s));
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
    s->subscribed = false;
}

void redis_disconnect(struct redis_store *s)
{
    redis_drop(s);
}

bool *redis_subscribed(struct redis_store *s)
{
    return &s->subscribed;
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
    if (!r && s->c && s->c->err == 0) {
        /* Our own allocation failed before anything was sent: the
         * connection is still in step. */
        return mk_fail(eb, MK_ENOMEM, "redis: %s: out of memory", what);
    }
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
    redisContext *c = redisConnectWithTimeout(s->dsn.host, s->dsn.port, ct);
    if (!c) {
        return mk_fail(eb, MK_ENOMEM, "redis: out of memory");
    }
    if (c->err) {
        int err = mk_fail(eb, MK_EUNAVAIL, "redis: connect %s:%d: %s", s->dsn.host, s->dsn.port,
                          c->errstr);
        redisFree(c);
        return err;
    }
    /* The command timeout bounds how long a dead server can hold a call;
     * keep-alive finds a silently vanished one. */
    if (redisSetTimeout(c, rt) != REDIS_OK || redisEnableKeepAlive(c) != REDIS_OK) {
        redisFree(c);
        return mk_fail(eb, MK_EUNAVAIL, "redis: connect %s:%d: cannot set timeouts", s->dsn.host,
                       s->dsn.port);
    }
    s->c = c;
    redisReply *r = NULL;
    const char *step = NULL;
    if (s->dsn.pass[0] || s->dsn.user[0]) {
        step = "AUTH";
        r = s->dsn.user[0] ? redisCommand(c, "AUTH %s %s", s->dsn.user, s->dsn.pass)
                           : redisCommand(c, "AUTH %s", s->dsn.pass);
    }
    if ((!step || (r && r->type != REDIS_REPLY_ERROR)) && s->dsn.db != 0) {
        if (r) {
            freeReplyObject(r);
        }
        step = "SELECT";
        r = redisCommand(c, "SELECT %d", s->dsn.db);
    }
    if (step && (!r || r->type == REDIS_REPLY_ERROR)) {
        /* A connection that is not logged in or in the wrong db is no use:
         * dropped, and the store is unavailable until a connect succeeds. */
        int err = redis_fail(s, r, eb, step);
        redis_drop(s);
        if (err == MK_EIO) {
            char msg[sizeof(eb->msg)];
            snprintf(msg, sizeof(msg), "%s", eb ? eb->msg : "");
            err = mk_fail(eb, MK_EUNAVAIL, "%s", msg);
        }
        return err;
    }
    if (r) {
        freeReplyObject(r);
    }
    if (s->was_up) {
        mk_log(MK_LOG_INFO, "store.redis", "reconnected to %s:%d/%d", s->dsn.host, s->dsn.port,
               s->dsn.db);
    }
    s->was_up = true;
    return 0;
}

static int redis_ready(struct redis_store *s, struct mk_errbuf *eb)
{
    return s->c ? 0 : redis_connect(s, eb);
}

redisContext *redis_context(struct redis_store *s, struct mk_errbuf *eb)
{
    return redis_ready(s, eb) == 0 ? s->c : NULL;
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
        mk_fail(eb, MK_EIO, "redis: script: unexpected answer %.*s",
                (int)(r->len < 60 ? r->len : 60), r->str);
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

int64_t redis_score(const redisReply *r)
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

static void redis_close(void *ctx)
{
    struct redis_store *s = ctx;
    if (!s) {
        return;
    }
    redis_drop(s);
    memset(s->dsn.pass, 0, sizeof(s->dsn.pass));
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
    int err = redis_dsn_parse(cfg->dsn, &s->dsn, eb);
    if (err == 0) {
        err = redis_connect(s, eb);
    }
    if (err == 0) {
        err = redis_layout_migrate(s, eb);
    }
    if (err < 0) {
        redis_close(s);
        return err;
    }
    mk_log(MK_LOG_DEBUG, "store.redis", "open: %s:%d/%d", s->dsn.host, s->dsn.port, s->dsn.db);
    *ctx = s;
    return 0;
}

const struct store_ops store_redis_ops = {
    .version = MK_STORE_V6,
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
    .class_list = redis_meta_class_list,
    .class_get = redis_meta_class_get,
    .class_insert = redis_meta_class_insert,
    .class_update = redis_meta_class_update,
    .class_delete = redis_meta_class_delete,
    .settings_load = redis_meta_settings_load,
    .settings_put = redis_meta_settings_put,
    .load_peers = redis_load_peers,
    .prune_peers = redis_apply_prune_peers,
    .prune_applied = redis_apply_prune_applied,
    /* A group is one script, and Redis serves no one while it runs (~80 us
     * a record on a busy 2-core machine): a segment's worth at most. */
    .max_group_records = 1,
    .user_history = redis_load_history,
    .user_suspicious = redis_load_suspicious,
    .load_tokens = redis_meta_load_tokens,
    .token_put = redis_meta_token_put,
    .token_delete = redis_meta_token_delete,
    .torrent_get_by_id = redis_admin_torrent_get_by_id,
    .publish_change = redis_notify_publish,
    .listen_changes = redis_notify_listen,
    .counts_put = redis_notify_counts_put,
    .counts_load = redis_notify_counts_load,
    .apply_segments = redis_apply_segments,
};
