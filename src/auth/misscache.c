/* auth/misscache.c: pending and negative lookups of keys not in memory.
 *
 * Owns: a fixed pool of queue_max + cache_max entries, a chained hash table
 * over the ones in use, the FIFO of queued reads and the FIFO of negative
 * entries (insertion order).
 * Not here: locking (the caller serialises every call), the store.
 * Invariants:
 * - Negative entries all live ttl_ms, and now_ms never goes back, so the
 *   expired ones are always a prefix of the negative FIFO: dropping them
 *   from its head before each lookup keeps every entry found fresh, and
 *   eviction of the oldest is the same pop.
 * - A key is in at most one entry: a fresh negative entry answers before a
 *   read is queued, and done() turns the pending entry itself negative.
 */
#include "auth/misscache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util/siphash.h"

enum miss_state { ENTRY_FREE, ENTRY_QUEUED, ENTRY_READING, ENTRY_NEGATIVE };

struct miss_entry {
    struct miss_entry *chain;  /* hash chain; the free list when ENTRY_FREE */
    struct miss_entry *fifo;   /* next in the queue or the negative FIFO */
    struct miss_waiter *waiters;
    int64_t expires_ms;        /* ENTRY_NEGATIVE */
    uint64_t hash;
    uint8_t state;
    struct miss_key key;
};

struct fifo {
    struct miss_entry *head, *tail;
};

struct misscache {
    uint8_t sipkey[16];
    uint32_t queue_max, cache_max, ttl_ms;
    uint32_t npending, nnegative;
    struct miss_entry *pool;
    struct miss_entry *free;
    struct miss_entry **buckets;
    size_t nbuckets; /* power of two */
    struct fifo queue;
    struct fifo negatives;
};

static void fifo_push(struct fifo *f, struct miss_entry *e)
{
    e->fifo = NULL;
    if (f->tail) {
        f->tail->fifo = e;
    } else {
        f->head = e;
    }
    f->tail = e;
}

static struct miss_entry *fifo_pop(struct fifo *f)
{
    struct miss_entry *e = f->head;
    if (e) {
        f->head = e->fifo;
        if (!f->head) {
            f->tail = NULL;
        }
        e->fifo = NULL;
    }
    return e;
}

int misscache_new(struct misscache **out, uint32_t queue_max, uint32_t cache_max,
                  uint32_t ttl_ms)
{
    if (queue_max == 0 || cache_max == 0) {
        return MK_EINVAL;
    }
    struct misscache *c = calloc(1, sizeof(*c));
    if (!c) {
        return MK_ENOMEM;
    }
    size_t got = 0;
    while (got < sizeof(c->sipkey)) {
        ssize_t r = getrandom(c->sipkey + got, sizeof(c->sipkey) - got, 0);
        if (r < 0 && errno != EINTR) {
            free(c);
            return MK_EIO;
        }
        got += r > 0 ? (size_t)r : 0;
    }
    c->queue_max = queue_max;
    c->cache_max = cache_max;
    c->ttl_ms = ttl_ms;
    size_t n = (size_t)queue_max + cache_max;
    c->nbuckets = 16;
    while (c->nbuckets < n) {
        c->nbuckets *= 2;
    }
    c->pool = calloc(n, sizeof(*c->pool));
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    if (!c->pool || !c->buckets) {
        misscache_free(c);
        return MK_ENOMEM;
    }
    for (size_t i = n; i-- > 0;) {
        c->pool[i].chain = c->free;
        c->free = &c->pool[i];
    }
    *out = c;
    return MK_OK;
}

void misscache_free(struct misscache *c)
{
    if (!c) {
        return;
    }
    free(c->pool);
    free(c->buckets);
    free(c);
}

static uint64_t key_hash(const struct misscache *c, const struct miss_key *k)
{
    uint8_t buf[1 + MISS_KEY_MAX];
    buf[0] = k->kind;
    memcpy(buf + 1, k->bytes, k->len);
    return siphash24(buf, 1 + (size_t)k->len, c->sipkey);
}

static struct miss_entry **slot_of(struct misscache *c, uint64_t hash, const struct miss_key *k)
{
    struct miss_entry **pe = &c->buckets[hash & (c->nbuckets - 1)];
    for (; *pe; pe = &(*pe)->chain) {
        const struct miss_entry *e = *pe;
        if (e->hash == hash && e->key.kind == k->kind && e->key.len == k->len &&
            memcmp(e->key.bytes, k->bytes, k->len) == 0) {
            break;
        }
    }
    return pe;
}

/* Unlinks e from its chain and returns it to the free list. */
static void entry_release(struct misscache *c, struct miss_entry *e)
{
    struct miss_entry **pe = slot_of(c, e->hash, &e->key);
    if (*pe == e) {
        *pe = e->chain;
    }
    e->state = ENTRY_FREE;
    e->waiters = NULL;
    e->chain = c->free;
    c->free = e;
}

static void drop_oldest_negative(struct misscache *c)
{
    struct miss_entry *e = fifo_pop(&c->negatives);
    if (e) {
        c->nnegative--;
        entry_release(c, e);
    }
}

static void expire(struct misscache *c, int64_t now_ms)
{
    while (c->negatives.head && c->negatives.head->expires_ms <= now_ms) {
        drop_oldest_negative(c);
    }
}

enum miss_verdict misscache_submit(struct misscache *c, const struct miss_key *key,
                                   int64_t now_ms, struct miss_waiter *w)
{
    expire(c, now_ms);
    uint64_t hash = key_hash(c, key);
    struct miss_entry **pe = slot_of(c, hash, key);
    struct miss_entry *e = *pe;
    if (e) {
        if (e->state == ENTRY_NEGATIVE) {
            return MISS_NEGATIVE;
        }
        w->next = e->waiters;
        e->waiters = w;
        return MISS_JOINED;
    }
    if (c->npending >= c->queue_max) {
        return MISS_FULL;
    }
    /* The pool holds queue_max + cache_max: with fewer than queue_max
     * pending, a free entry exists unless negatives fill the rest. */
    if (!c->free) {
        drop_oldest_negative(c);
        pe = slot_of(c, hash, key); /* the chain may have changed */
    }
    e = c->free;
    c->free = e->chain;
    memset(e, 0, sizeof(*e));
    e->hash = hash;
    e->key = *key;
    e->state = ENTRY_QUEUED;
    e->chain = NULL;
    *pe = e;
    w->next = NULL;
    e->waiters = w;
    fifo_push(&c->queue, e);
    c->npending++;
    return MISS_QUEUED;
}

bool misscache_next(struct misscache *c, struct miss_key *out)
{
    struct miss_entry *e = fifo_pop(&c->queue);
    if (!e) {
        return false;
    }
    e->state = ENTRY_READING;
    *out = e->key;
    return true;
}

struct miss_waiter *misscache_done(struct misscache *c, const struct miss_key *key, bool negative,
                                   int64_t now_ms)
{
    struct miss_entry *e = *slot_of(c, key_hash(c, key), key);
    if (!e || e->state != ENTRY_READING) {
        return NULL;
    }
    struct miss_waiter *w = e->waiters;
    e->waiters = NULL;
    c->npending--;
    if (!negative || c->ttl_ms == 0) {
        entry_release(c, e);
        return w;
    }
    if (c->nnegative >= c->cache_max) {
        drop_oldest_negative(c);
    }
    e->state = ENTRY_NEGATIVE;
    e->expires_ms = now_ms + c->ttl_ms;
    fifo_push(&c->negatives, e);
    c->nnegative++;
    return w;
}

struct miss_waiter *misscache_drain(struct misscache *c)
{
    struct miss_waiter *all = NULL;
    size_t n = (size_t)c->queue_max + c->cache_max;
    for (size_t i = 0; i < n; i++) {
        struct miss_entry *e = &c->pool[i];
        if (e->state != ENTRY_QUEUED && e->state != ENTRY_READING) {
            continue;
        }
        struct miss_waiter *w = e->waiters;
        while (w) {
            struct miss_waiter *next = w->next;
            w->next = all;
            all = w;
            w = next;
        }
        entry_release(c, e);
        c->npending--;
    }
    c->queue.head = c->queue.tail = NULL;
    return all;
}

uint32_t misscache_pending(const struct misscache *c)
{
    return c->npending;
}

uint32_t misscache_negatives(const struct misscache *c)
{
    return c->nnegative;
}
