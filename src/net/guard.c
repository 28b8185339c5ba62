/* net/guard.c: per-network connection counts and unknown-passkey scores.
 *
 * Owns: the two tables of guard.h and their arithmetic.
 * - Connections: one atomic counter per bucket (key % GUARD_CONN_BUCKETS),
 *   raised on accept and lowered on close; a raise past the cap is undone.
 * - Passkeys: GUARD_PASSKEY_WAYS atomic 64-bit slots per bucket
 *   (key % GUARD_PASSKEY_BUCKETS), each holding [tag:20 | score:12 |
 *   time:32]. The score is a leaky bucket: each unknown passkey adds 1, and
 *   `limit` leak away per GUARD_PASSKEY_WINDOW seconds, so an address over
 *   the limit is refused until it slows down, for at most a window after it
 *   stops. A network new to its bucket takes the way whose score is lowest
 *   now (an empty or leaked-out one first): the table is a cache of recent
 *   guessers, and the ones it forgets are the ones that guessed least.
 * Not here: the answers (conn.c).
 */
#include "net/guard.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util/siphash.h"

#define GUARD_TAG_BITS 20
#define GUARD_SCORE_BITS 12

struct guard {
    struct guard_cfg cfg;
    uint8_t hash_key[16];
    _Atomic uint64_t conns_refused;
    _Atomic uint64_t passkey_misses;
    _Atomic uint64_t passkey_refused;
    _Atomic uint32_t conns[GUARD_CONN_BUCKETS];
    _Atomic uint64_t passkeys[GUARD_PASSKEY_BUCKETS * GUARD_PASSKEY_WAYS];
};

int guard_new(struct guard **out, const struct guard_cfg *cfg)
{
    *out = NULL;
    struct guard *g = calloc(1, sizeof(*g));
    if (!g) {
        return MK_ENOMEM;
    }
    g->cfg = *cfg;
    if (g->cfg.passkey_limit > GUARD_PASSKEY_LIMIT_MAX) {
        g->cfg.passkey_limit = GUARD_PASSKEY_LIMIT_MAX;
    }
    if (getrandom(g->hash_key, sizeof(g->hash_key), 0) != (ssize_t)sizeof(g->hash_key)) {
        free(g);
        return MK_EIO;
    }
    *out = g;
    return MK_OK;
}

void guard_free(struct guard *g)
{
    free(g);
}

uint64_t guard_key(const struct guard *g, int family, const uint8_t *ip)
{
    uint8_t buf[9];
    /* The family byte keeps 10.0.0.1 and 0a00:0001:: apart. An IPv6
     * subscriber gets a /64 at least, so its addresses count as one. */
    size_t n = family == AF_INET6 ? 8 : 4;
    buf[0] = (uint8_t)family;
    memcpy(buf + 1, ip, n);
    return siphash24(buf, n + 1, g->hash_key);
}

bool guard_conn_open(struct guard *g, uint64_t key)
{
    if (g->cfg.max_conns == 0) {
        return true;
    }
    _Atomic uint32_t *c = &g->conns[key % GUARD_CONN_BUCKETS];
    uint32_t before = atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
    if (before >= g->cfg.max_conns) {
        atomic_fetch_sub_explicit(c, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&g->conns_refused, 1, memory_order_relaxed);
        return false;
    }
    return true;
}

void guard_conn_close(struct guard *g, uint64_t key)
{
    if (g->cfg.max_conns == 0) {
        return;
    }
    atomic_fetch_sub_explicit(&g->conns[key % GUARD_CONN_BUCKETS], 1, memory_order_relaxed);
}

static uint32_t guard_tag(uint64_t key)
{
    return (uint32_t)(key >> (64 - GUARD_TAG_BITS));
}

static uint64_t guard_slot(uint32_t tag, uint32_t score, uint32_t time)
{
    return (uint64_t)tag << (64 - GUARD_TAG_BITS) | (uint64_t)score << 32 | time;
}

/* The slot's score for tag after leaking until now (0 for another tag), and
 * in *since the time from which the rest of the leak counts: only whole
 * leaked units move it, so frequent misses do not lose the fractions. */
static uint32_t guard_score(const struct guard *g, uint64_t slot, uint32_t tag, uint32_t now,
                            uint32_t *since)
{
    *since = now;
    if ((uint32_t)(slot >> (64 - GUARD_TAG_BITS)) != tag) {
        return 0;
    }
    uint32_t score = (uint32_t)(slot >> 32) & ((1u << GUARD_SCORE_BITS) - 1);
    uint32_t then = (uint32_t)slot;
    uint64_t elapsed = now > then ? now - then : 0;
    uint64_t leaked = elapsed * g->cfg.passkey_limit / GUARD_PASSKEY_WINDOW;
    if (leaked >= score) {
        return 0;
    }
    *since = then + (uint32_t)(leaked * GUARD_PASSKEY_WINDOW / g->cfg.passkey_limit);
    return score - (uint32_t)leaked;
}

static _Atomic uint64_t *guard_bucket(struct guard *g, uint64_t key)
{
    return &g->passkeys[(key % GUARD_PASSKEY_BUCKETS) * GUARD_PASSKEY_WAYS];
}

bool guard_passkey_refused(struct guard *g, uint64_t key, uint32_t now)
{
    if (g->cfg.passkey_limit == 0) {
        return false;
    }
    _Atomic uint64_t *ways = guard_bucket(g, key);
    uint32_t tag = guard_tag(key), since;
    for (unsigned i = 0; i < GUARD_PASSKEY_WAYS; i++) {
        uint64_t slot = atomic_load_explicit(&ways[i], memory_order_relaxed);
        if (guard_score(g, slot, tag, now, &since) >= g->cfg.passkey_limit) {
            return true;
        }
    }
    return false;
}

/* The way of the bucket that holds tag, else the one whose score is lowest
 * now (its network is the one the table forgets). */
static _Atomic uint64_t *guard_way_for(struct guard *g, _Atomic uint64_t *ways, uint32_t tag,
                                       uint32_t now)
{
    _Atomic uint64_t *lowest = &ways[0];
    uint32_t lowest_score = UINT32_MAX, since;
    for (unsigned i = 0; i < GUARD_PASSKEY_WAYS; i++) {
        uint64_t slot = atomic_load_explicit(&ways[i], memory_order_relaxed);
        if (slot != 0 && guard_tag(slot) == tag) {
            return &ways[i];
        }
        uint32_t score = guard_score(g, slot, guard_tag(slot), now, &since);
        if (score < lowest_score) {
            lowest = &ways[i];
            lowest_score = score;
        }
    }
    return lowest;
}

bool guard_passkey_miss(struct guard *g, uint64_t key, uint32_t now)
{
    atomic_fetch_add_explicit(&g->passkey_misses, 1, memory_order_relaxed);
    if (g->cfg.passkey_limit == 0) {
        return false;
    }
    uint32_t tag = guard_tag(key);
    _Atomic uint64_t *s = guard_way_for(g, guard_bucket(g, key), tag, now);
    uint64_t old = atomic_load_explicit(s, memory_order_relaxed);
    uint32_t score, since;
    do {
        score = guard_score(g, old, tag, now, &since);
        if (score < (1u << GUARD_SCORE_BITS) - 1) {
            score++;
        }
    } while (!atomic_compare_exchange_weak_explicit(s, &old, guard_slot(tag, score, since),
                                                    memory_order_relaxed, memory_order_relaxed));
    return score == g->cfg.passkey_limit;
}

void guard_passkey_refusal(struct guard *g)
{
    atomic_fetch_add_explicit(&g->passkey_refused, 1, memory_order_relaxed);
}

void guard_stats_read(const struct guard *g, struct guard_stats *out)
{
    out->conns_refused = atomic_load_explicit(&g->conns_refused, memory_order_relaxed);
    out->passkey_misses = atomic_load_explicit(&g->passkey_misses, memory_order_relaxed);
    out->passkey_refused = atomic_load_explicit(&g->passkey_refused, memory_order_relaxed);
}
