/* auth/misscache.h: what the resolver knows about keys that were not in memory.
 *
 * Owns: one table of passkeys and info_hashes that missed the in-memory
 * tables, each either pending (a store read is queued or running, with the
 * requests waiting for it) or negative (the store said "no such row", kept
 * for a time so that the same unknown key costs no second read). Concurrent
 * misses on one key share one pending entry: one store read for all of them.
 * Not here: threads, locks, the store (auth/resolver.c owns them and calls
 * this with its mutex held).
 * Invariants: memory is fixed at creation: at most queue_max pending and
 * cache_max negative entries, whatever the traffic. The oldest negative entry
 * is evicted to make room for a new one; a full queue refuses new keys (the
 * caller answers "try again later") but still lets requests join a pending
 * key. Keys are hashed with SipHash under a random key, so nobody choosing
 * passkeys can aim them at one chain. Every call is O(1) (amortised).
 */
#ifndef MIKA_AUTH_MISSCACHE_H
#define MIKA_AUTH_MISSCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"
#include "util/err.h"

enum miss_kind {
    MISS_PASSKEY = 0,
    MISS_INFO_HASH = 1,
};
#define MISS_KINDS 2
#define MISS_KEY_MAX MK_PASSKEY_MAX /* a passkey is the longest key; an info_hash is 20 */

struct miss_key {
    uint8_t kind;  /* enum miss_kind */
    uint8_t len;   /* 1..MISS_KEY_MAX */
    uint8_t bytes[MISS_KEY_MAX];
};

/* A request waiting for a key, linked into its pending entry. The caller
 * embeds it in its own record and owns its memory; the cache only links. */
struct miss_waiter {
    struct miss_waiter *next;
};

enum miss_verdict {
    MISS_QUEUED,   /* a new read was queued; the waiter is linked */
    MISS_JOINED,   /* a read of this key was already pending; the waiter is linked */
    MISS_NEGATIVE, /* the store said no within the negative time; waiter not taken */
    MISS_FULL,     /* queue_max reads pending already; waiter not taken */
};

struct misscache;

/* queue_max >= 1 pending keys, cache_max >= 1 negative keys kept ttl_ms
 * (0: none kept; concurrent misses still share a read). MK_EINVAL for a zero
 * bound, MK_ENOMEM, MK_EIO when getrandom fails. */
int misscache_new(struct misscache **out, uint32_t queue_max, uint32_t cache_max,
                  uint32_t ttl_ms);
void misscache_free(struct misscache *c);

/* Looks key up at now_ms (any monotonic milliseconds) and links w to a
 * pending read when the verdict is QUEUED or JOINED. */
enum miss_verdict misscache_submit(struct misscache *c, const struct miss_key *key,
                                   int64_t now_ms, struct miss_waiter *w);

/* Takes the oldest queued key for reading (it stays pending, so later misses
 * join it); false when none is queued. */
bool misscache_next(struct misscache *c, struct miss_key *out);

/* The read of key finished: returns its waiters (NULL-terminated list, in
 * any order) and forgets the pending entry, keeping it as negative when
 * negative is true and ttl_ms > 0. A found row or a failed read keeps
 * nothing: a found row is in memory now, a failure must be retried. */
struct miss_waiter *misscache_done(struct misscache *c, const struct miss_key *key, bool negative,
                                   int64_t now_ms);

/* Forgets every pending entry (queued or being read) and returns all their
 * waiters: shutdown. Negative entries stay. */
struct miss_waiter *misscache_drain(struct misscache *c);

uint32_t misscache_pending(const struct misscache *c);
uint32_t misscache_negatives(const struct misscache *c);

#endif /* MIKA_AUTH_MISSCACHE_H */
