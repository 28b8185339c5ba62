/* store/redis_load.c: the redis backend's loaders and paged reads.
 *
 * Owns: streaming users, torrents, the whitelist, snatches and peers to the
 * tracker at start-up, and one user's history and suspicious uploads for
 * the admin API, each walking its index key REDIS_PAGE members per round
 * trip (a pipeline of HMGETs per page), never the whole set at once.
 * Not here: the connection and the walks themselves (redis.c), writes
 * (redis_apply.c, redis_admin.c, redis_meta.c).
 * Invariants: rows that break the store.h contract are skipped with a
 * warning, never passed on; a row deleted between reading the index and
 * reading the row is skipped silently; a callback's error stops the load and
 * comes back as is, with the connection left ready (every reply of a page is
 * read before the callbacks run).
 */
#include "store/redis_admin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
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

int redis_load_users(void *ctx, store_user_fn fn, void *arg, struct mk_errbuf *eb)
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

int redis_load_torrents(void *ctx, store_torrent_fn fn, void *arg, struct mk_errbuf *eb)
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

int redis_load_whitelist(void *ctx, store_whitelist_fn fn, void *arg, struct mk_errbuf *eb)
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

int redis_load_snatches(void *ctx, store_snatch_fn fn, void *arg, struct mk_errbuf *eb)
{
    struct redis_sink sink = {.snatch = fn, .arg = arg};
    return redis_walk_lex(ctx, REDIS_PREFIX "snatches", "-", 1, "+", 1, redis_snatches_page,
                          &sink, eb);
}


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
                           " seeder partial last_seen gone node",
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
        uint64_t node = redis_u64(redis_el(r, 9)); /* absent before node ids: 0 */
        row.node_id = node <= UINT16_MAX ? (uint16_t)node : 0;
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

int redis_load_peers(void *ctx, int64_t seen_since, store_peer_fn fn, void *arg,
                            struct mk_errbuf *eb)
{
    struct redis_sink sink = {.peer = fn, .arg = arg};
    return redis_walk_score(ctx, REDIS_PREFIX "peers", seen_since, redis_peers_page, &sink, eb);
}


/* ---- a user's history and suspicious uploads, a page at a time ------------ */

/* Reads [offset, offset + want) of a user's index (newest first) and its
 * size, in one MULTI/EXEC so the count and the page agree. *page gets the
 * WITHSCORES array (caller frees). */
static int redis_user_range(struct redis_store *s, const char *key, uint64_t offset,
                            uint32_t want, uint64_t *total, redisReply **page,
                            struct mk_errbuf *eb)
{
    uint64_t stop = offset + want - 1;
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
    const redisReply *pg = redis_el(ex, 1);
    if (!pg || pg->type != REDIS_REPLY_ARRAY || pg->elements % 2 || pg->elements > 2 * want ||
        ex->elements != 2) {
        err = mk_fail(eb, MK_EIO, "redis: %s: unexpected reply", key);
    } else {
        for (size_t i = 0; i < pg->elements; i++) {
            if (pg->element[i]->type != REDIS_REPLY_STRING) {
                err = mk_fail(eb, MK_EIO, "redis: %s: unexpected reply", key);
            }
        }
    }
    if (err == 0) {
        *total = redis_u64(ex->element[0]);
        *page = ex->element[1];
        ex->element[1] = NULL; /* taken: freeReplyObject skips NULL elements */
    }
    redis_replies_free(r, 4);
    return err;
}

/* Streams [offset, offset + limit) of a user's index, REDIS_PAGE members per
 * round trip; *total is the index's size when the first page was read. A
 * page after the first is read in its own snapshot (rows booked meanwhile
 * may shift the order by one). */
static int redis_user_walk(struct redis_store *s, const char *key, uint64_t offset,
                           uint32_t limit, uint64_t *total, redis_page_fn fn, void *arg,
                           struct mk_errbuf *eb)
{
    offset = offset > INT64_MAX / 2 ? INT64_MAX / 2 : offset;
    uint64_t done = 0;
    bool first = true;
    for (;;) {
        uint64_t left = limit - done;
        uint32_t want = left < REDIS_PAGE ? (uint32_t)left : REDIS_PAGE;
        uint64_t size = 0;
        redisReply *page = NULL;
        /* Even a zero limit reads the count. */
        int err = redis_user_range(s, key, offset + done, want ? want : 1, &size, &page, eb);
        if (err < 0) {
            return err;
        }
        if (first) {
            *total = size;
            first = false;
        }
        size_t n = want ? page->elements / 2 : 0;
        err = n ? fn(s, page, arg, eb) : 0;
        freeReplyObject(page);
        done += n;
        if (err < 0 || n < want || done >= limit) {
            return err;
        }
    }
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

struct redis_history_walk {
    uint32_t user_id;
    store_history_fn fn;
    void *arg;
};

static int redis_history_page(struct redis_store *s, const redisReply *page, void *arg,
                              struct mk_errbuf *eb)
{
    const struct redis_history_walk *w = arg;
    size_t n = page->elements / 2;
    uint32_t tids[REDIS_PAGE];
    int err = 0;
    for (size_t i = 0; err == 0 && i < n; i++) {
        char hex[16];
        redis_text(page->element[2 * i], hex, sizeof(hex));
        tids[i] = UINT32_MAX - (uint32_t)strtoul(hex, NULL, 16);
        err = redis_append(s, eb,
                           "HMGET " REDIS_PREFIX "history:%u:%u uploaded downloaded"
                           " raw_uploaded raw_downloaded seed_time leech_time announces"
                           " first_announce last_announce completed_at",
                           w->user_id, tids[i]);
    }
    redisReply *rows[REDIS_PAGE];
    if (err < 0 || (err = redis_get_all(s, rows, n, eb)) < 0) {
        return err;
    }
    struct redis_tih *names = calloc(n, sizeof(*names));
    err = names ? redis_torrents_name(s, tids, n, names, eb)
                : mk_fail(eb, MK_ENOMEM, "redis: out of memory");
    for (size_t i = 0; err == 0 && i < n; i++) {
        struct history_row row;
        memset(&row, 0, sizeof(row));
        row.torrent_id = tids[i];
        if (names[i].found) {
            memcpy(row.info_hash, names[i].ih, 20);
            row.size = names[i].size;
        }
        uint64_t *u64[] = {&row.uploaded,   &row.downloaded, &row.raw_uploaded,
                           &row.raw_downloaded, &row.seed_time, &row.leech_time,
                           &row.announces};
        for (size_t j = 0; j < 7; j++) {
            *u64[j] = redis_u64(redis_el(rows[i], j));
        }
        row.first_announce = redis_i64(redis_el(rows[i], 7));
        row.last_announce = redis_i64(redis_el(rows[i], 8));
        row.completed_at = redis_i64(redis_el(rows[i], 9));
        err = w->fn(&row, w->arg);
        err = err > 0 ? 0 : err;
    }
    redis_replies_free(rows, n);
    free(names);
    return err;
}

int redis_load_history(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
                       store_history_fn fn, void *arg, uint64_t *total, struct mk_errbuf *eb)
{
    char key[64];
    snprintf(key, sizeof(key), REDIS_PREFIX "user:%u:history", user_id);
    struct redis_history_walk w = {.user_id = user_id, .fn = fn, .arg = arg};
    return redis_user_walk(ctx, key, offset, limit, total, redis_history_page, &w, eb);
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

struct redis_suspicious_walk {
    uint32_t user_id;
    store_suspicious_fn fn;
    void *arg;
};

static int redis_suspicious_page(struct redis_store *s, const redisReply *page, void *arg,
                                 struct mk_errbuf *eb)
{
    const struct redis_suspicious_walk *w = arg;
    size_t n = page->elements / 2;
    struct suspicious_row *rows = calloc(n, sizeof(*rows));
    uint32_t *tids = calloc(n, sizeof(*tids));
    struct redis_tih *names = calloc(n, sizeof(*names));
    int err = rows && tids && names ? 0 : mk_fail(eb, MK_ENOMEM, "redis: out of memory");
    for (size_t i = 0; err == 0 && i < n; i++) {
        if (!redis_suspicious_parse(page->element[2 * i], &rows[i])) {
            mk_log(MK_LOG_WARN, "store.redis", "user %" PRIu32 ": malformed suspicious row",
                   w->user_id);
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
        err = w->fn(&rows[i], w->arg);
        err = err > 0 ? 0 : err;
    }
    free(rows);
    free(tids);
    free(names);
    return err;
}

int redis_load_suspicious(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
                          store_suspicious_fn fn, void *arg, uint64_t *total,
                          struct mk_errbuf *eb)
{
    char key[64];
    snprintf(key, sizeof(key), REDIS_PREFIX "user:%u:suspicious", user_id);
    struct redis_suspicious_walk w = {.user_id = user_id, .fn = fn, .arg = arg};
    return redis_user_walk(ctx, key, offset, limit, total, redis_suspicious_page, &w, eb);
}
