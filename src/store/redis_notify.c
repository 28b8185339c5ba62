/* store/redis_notify.c: the redis backend's part in a cluster.
 *
 * Owns: change notices (PUBLISH mika:changes; SUBSCRIBE on a dedicated
 * connection, waited for with poll() on its socket so that a quiet channel
 * never trips hiredis's command timeout), and the swarm counts each node
 * publishes: the hash mika:counts:<node> (raw info_hash ->
 * "<seeders>:<leechers>:<snatches>:<announced_at>"),
 * which expires ttl_s after the node last published, and the set
 * mika:counts:nodes of node ids that ever published. Contracts in store.h.
 * Not here: what a notice means or what counts are for (cluster/).
 * Invariants: a context that listens sends nothing but SUBSCRIBE; a dead
 * node's counts vanish with its hash's expiry (Redis's clock, not ours).
 * Pub/sub channels are not per database: nodes of two clusters on two dbs
 * of one server would hear each other's notices (harmless re-reads).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/redis_admin.h"

#define REDIS_CHANNEL REDIS_PREFIX "changes"
#define REDIS_COUNTS_NODES REDIS_PREFIX "counts:nodes"
#define REDIS_COUNTS_CHUNK 500 /* commands per pipeline round trip */

int redis_notify_publish(void *ctx, const char *payload, struct mk_errbuf *eb)
{
    return redis_cmd(ctx, NULL, eb, "PUBLISH %s %s", REDIS_CHANNEL, payload);
}

/* why may point into the connection (its errstr): used before it goes. */
static int redis_notify_lost(struct redis_store *s, struct mk_errbuf *eb, const char *why)
{
    int err = mk_fail(eb, MK_EUNAVAIL, "redis: listen: connection lost: %s", why);
    redis_disconnect(s);
    return err;
}

/* Hands fn the notice in r, if it is one ("message", channel, payload). */
static void redis_notify_message(const redisReply *r, store_change_fn fn, void *arg)
{
    const redisReply *kind = redis_el(r, 0), *payload = redis_el(r, 2);
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && kind &&
        kind->type == REDIS_REPLY_STRING && strcmp(kind->str, "message") == 0 && payload &&
        payload->type == REDIS_REPLY_STRING) {
        fn(payload->str, payload->len, arg);
    }
}

/* Every reply already read from the socket; -1 when the stream is broken. */
static int redis_notify_drain(redisContext *c, store_change_fn fn, void *arg)
{
    for (;;) {
        void *r = NULL;
        if (redisGetReplyFromReader(c, &r) != REDIS_OK) {
            return -1;
        }
        if (!r) {
            return 0;
        }
        redis_notify_message(r, fn, arg);
        freeReplyObject(r);
    }
}

int redis_notify_listen(void *ctx, int timeout_ms, store_change_fn fn, void *arg,
                        struct mk_errbuf *eb)
{
    struct redis_store *s = ctx;
    if (!*redis_subscribed(s)) {
        redisContext *c = redis_context(s, eb);
        if (!c) {
            return MK_EUNAVAIL;
        }
        redisReply *r = redisCommand(c, "SUBSCRIBE %s", REDIS_CHANNEL);
        bool ok = r && r->type == REDIS_REPLY_ARRAY;
        if (r) {
            freeReplyObject(r);
        }
        if (!ok) {
            return redis_notify_lost(s, eb, c->errstr[0] ? c->errstr : "SUBSCRIBE refused");
        }
        *redis_subscribed(s) = true;
        fn(NULL, 0, arg); /* anything sent before this moment is not ours to see */
    }
    redisContext *c = redis_context(s, eb);
    if (!c || redis_notify_drain(c, fn, arg) < 0) {
        return redis_notify_lost(s, eb, "protocol error");
    }
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    int ready = poll(&pfd, 1, timeout_ms);
    if (ready <= 0) {
        return 0; /* a timeout, or a signal: the caller comes back */
    }
    if (redisBufferRead(c) != REDIS_OK) {
        return redis_notify_lost(s, eb, c->errstr[0] ? c->errstr : "read failed");
    }
    if (redis_notify_drain(c, fn, arg) < 0) {
        return redis_notify_lost(s, eb, "protocol error");
    }
    return 0;
}

/* ---- swarm counts ---------------------------------------------------------- */

static void redis_counts_key(char *out, size_t cap, uint16_t node)
{
    snprintf(out, cap, REDIS_PREFIX "counts:%u", node);
}

/* Sends what was queued (queued replies) and checks every answer. */
static int redis_counts_flush(struct redis_store *s, size_t queued, struct mk_errbuf *eb)
{
    if (queued == 0) {
        return 0;
    }
    redisReply **r = calloc(queued, sizeof(*r));
    if (!r) {
        redis_disconnect(s); /* queued replies would answer the next call */
        return mk_fail(eb, MK_ENOMEM, "redis: out of memory");
    }
    int err = redis_get_all(s, r, queued, eb);
    for (size_t i = 0; err == 0 && i < queued; i++) {
        if (r[i]->type == REDIS_REPLY_ERROR) {
            err = mk_fail(eb, MK_EIO, "redis: counts: %s", r[i]->str);
        }
    }
    redis_replies_free(r, queued);
    free(r);
    return err;
}

int redis_notify_counts_put(void *ctx, uint16_t node, bool reset,
                            const struct swarm_count_row *rows, size_t n, uint32_t ttl_s,
                            struct mk_errbuf *eb)
{
    struct redis_store *s = ctx;
    char key[64];
    redis_counts_key(key, sizeof(key), node);
    size_t queued = 0;
    int err = 0;
    if (reset) {
        err = redis_append(s, eb, "DEL %s", key);
        queued += err == 0;
    }
    for (size_t i = 0; err == 0 && i < n; i++) {
        const struct swarm_count_row *c = &rows[i];
        if (c->seeders == 0 && c->leechers == 0) {
            err = redis_append(s, eb, "HDEL %s %b", key, (const char *)c->info_hash, (size_t)20);
        } else {
            char v[48];
            snprintf(v, sizeof(v), "%u:%u:%u:%u", c->seeders, c->leechers, c->snatches,
                     c->announced_at);
            err = redis_append(s, eb, "HSET %s %b %s", key, (const char *)c->info_hash,
                               (size_t)20, v);
        }
        queued += err == 0;
        if (err == 0 && queued == REDIS_COUNTS_CHUNK) {
            err = redis_counts_flush(s, queued, eb);
            queued = 0;
        }
    }
    if (err == 0) {
        err = redis_append(s, eb, "EXPIRE %s %u", key, ttl_s);
        queued += err == 0;
    }
    if (err == 0) {
        err = redis_append(s, eb, "SADD %s %u", REDIS_COUNTS_NODES, node);
        queued += err == 0;
    }
    if (err == 0) {
        err = redis_counts_flush(s, queued, eb);
    } else if (queued > 0) {
        redis_disconnect(s); /* replies of what was queued would answer the next call */
    }
    return err;
}

/* One page of HSCAN: field, value, field, value... */
static int redis_counts_page(const redisReply *page, uint16_t node, store_count_fn fn, void *arg)
{
    for (size_t i = 0; i + 1 < page->elements; i += 2) {
        const redisReply *f = page->element[i], *v = page->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || f->len != 20 || v->type != REDIS_REPLY_STRING) {
            continue;
        }
        struct swarm_count_row row = {.node_id = node};
        memcpy(row.info_hash, f->str, 20);
        /* seeders:leechers:snatches:announced_at (a node before snatches
         * and announced_at wrote the first two only: they read as 0). */
        if (sscanf(v->str, "%" SCNu32 ":%" SCNu32 ":%" SCNu32 ":%" SCNu32, &row.seeders,
                   &row.leechers, &row.snatches, &row.announced_at) < 2) {
            continue;
        }
        int rc = fn(&row, arg);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

static int redis_counts_node(struct redis_store *s, uint16_t node, store_count_fn fn, void *arg,
                             struct mk_errbuf *eb)
{
    char key[64], cursor[32] = "0";
    redis_counts_key(key, sizeof(key), node);
    do {
        redisReply *r = NULL;
        int err = redis_cmd(s, &r, eb, "HSCAN %s %s COUNT %d", key, cursor, REDIS_PAGE);
        if (err < 0) {
            return err;
        }
        const redisReply *next = redis_el(r, 0), *page = redis_el(r, 1);
        if (!next || !page || page->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            return mk_fail(eb, MK_EIO, "redis: HSCAN %s: unexpected reply", key);
        }
        redis_text(next, cursor, sizeof(cursor));
        err = redis_counts_page(page, node, fn, arg);
        freeReplyObject(r);
        if (err < 0) {
            return err;
        }
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

int redis_notify_counts_load(void *ctx, uint16_t self, uint32_t ttl_s, store_count_fn fn,
                             void *arg, struct mk_errbuf *eb)
{
    struct redis_store *s = ctx;
    (void)ttl_s; /* a dead node's hash has expired: HSCAN finds nothing */
    redisReply *r = NULL;
    int err = redis_cmd(s, &r, eb, "SMEMBERS %s", REDIS_COUNTS_NODES);
    if (err < 0) {
        return err;
    }
    /* Node ids are 1..65535: the set is small, whatever the swarms. */
    size_t n = 0;
    uint16_t *nodes = calloc(r->type == REDIS_REPLY_ARRAY ? r->elements + 1 : 1, sizeof(*nodes));
    if (!nodes) {
        freeReplyObject(r);
        return mk_fail(eb, MK_ENOMEM, "redis: out of memory");
    }
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        uint32_t id = redis_u32(r->element[i], UINT16_MAX);
        if (id != 0 && id != self) {
            nodes[n++] = (uint16_t)id;
        }
    }
    freeReplyObject(r);
    for (size_t i = 0; err == 0 && i < n; i++) {
        err = redis_counts_node(s, nodes[i], fn, arg, eb);
    }
    free(nodes);
    return err;
}
