/* net/guard.h: per-address limits on the tracker port.
 *
 * Owns: two fixed-size tables keyed by a keyed hash of the client's network
 * (an IPv4 address, or the /64 of an IPv6 address: what one subscriber
 * gets): open connections per network, and a decaying count of unknown
 * passkeys per network, so that one address can neither hold the server's
 * connections nor guess passkeys at line rate.
 * Not here: what to answer (conn.c), what an unknown passkey is
 * (tracker.c's "unknown passkey" answer).
 * Invariants: memory is fixed at creation and never grows with traffic;
 * every call is O(1) with relaxed atomics, so one guard may serve several
 * threads. Two networks that share a connection bucket (a collision of the
 * keyed hash) share its count: that table errs towards refusing. The
 * passkey table keeps GUARD_PASSKEY_WAYS networks per bucket, so guessers
 * that collide keep their own scores; only a fifth guesser in a bucket makes
 * it forget one, the one whose score is lowest.
 */
#ifndef MIKA_NET_GUARD_H
#define MIKA_NET_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

#define GUARD_CONN_BUCKETS 16384u
#define GUARD_PASSKEY_BUCKETS 1024u
#define GUARD_PASSKEY_WAYS 4u
#define GUARD_PASSKEY_WINDOW 60u /* seconds in which `limit` unknown passkeys leak away */
#define GUARD_PASSKEY_LIMIT_MAX 4095u

struct guard_cfg {
    uint32_t max_conns;     /* open connections per network; 0 = no cap */
    uint32_t passkey_limit; /* unknown passkeys per GUARD_PASSKEY_WINDOW; 0 = off */
};

struct guard_stats {
    uint64_t conns_refused;   /* connections turned away by the per-network cap */
    uint64_t passkey_misses;  /* unknown passkeys counted */
    uint64_t passkey_refused; /* requests refused because their network guessed too much */
};

struct guard;

/* MK_ENOMEM, or 0 with a guard whose hash key is fresh from getrandom
 * (MK_EIO if that fails), so nobody can aim collisions at a bucket. */
int guard_new(struct guard **out, const struct guard_cfg *cfg);
void guard_free(struct guard *g);

/* The table key of a client: family AF_INET (4 bytes) or AF_INET6 (16 bytes,
 * of which the first 8 count), in network order. */
uint64_t guard_key(const struct guard *g, int family, const uint8_t *ip);

/* Counts a new connection from key; false (and nothing counted) when the
 * network already holds max_conns. Pair every true with guard_conn_close. */
bool guard_conn_open(struct guard *g, uint64_t key);
void guard_conn_close(struct guard *g, uint64_t key);

/* True while key's network is over the unknown-passkey limit: the caller
 * refuses its requests, whatever passkey they carry (else a guess that hits
 * would still be told so). now: seconds on any monotonic clock. */
bool guard_passkey_refused(struct guard *g, uint64_t key, uint32_t now);
/* Counts one unknown passkey from key; true when this one reached the
 * limit (for a log line). */
bool guard_passkey_miss(struct guard *g, uint64_t key, uint32_t now);
/* Counts a request refused because of the limit. */
void guard_passkey_refusal(struct guard *g);

void guard_stats_read(const struct guard *g, struct guard_stats *out);

#endif /* MIKA_NET_GUARD_H */
