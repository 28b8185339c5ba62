/* auth/resolver.h: looks up passkeys and info_hashes that missed memory, off
 * the event loop.
 *
 * Owns: one thread with its own store connection, the miss cache
 * (auth/misscache.h: coalescing, negative caching, the bounded queue),
 * per-worker inboxes through which answers go back to the worker that asked,
 * and the lookup counters for /metrics.
 * Not here: parking and resuming connections (net/conn.c, net/server.c), what a miss
 * answers (net/tracker.c).
 * Why one thread: a store context serves one thread at a time, so a pool
 * would need a connection each; reads are point lookups by a unique key
 * (milliseconds), misses of real rows happen once per new user or torrent,
 * and a flood of unknown keys is held off by the negative cache, the bounded
 * queue and the passkey-guessing limiter, not by more readers.
 * Threads: resolver_submit and the inbox calls run on workers; everything
 * else on the thread that owns the daemon. A ticket belongs to the resolver
 * from submit until it is posted to its inbox, then to the worker again; the
 * resolver never reads or writes a ticket's cookie.
 */
#ifndef MIKA_AUTH_RESOLVER_H
#define MIKA_AUTH_RESOLVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth/misscache.h"
#include "auth/users.h"
#include "store/store.h"
#include "swarm/torrents.h"
#include "util/err.h"

struct resolver;
struct resolver_inbox;

/* One waiting request. The worker's cookie (its connection) stays the
 * worker's business: it may clear it while the ticket is out (the
 * connection closed) and finds NULL when the answer arrives. */
struct resolver_ticket {
    struct miss_waiter link;       /* first: the cache links tickets by this */
    struct resolver_inbox *inbox;
    struct resolver_ticket *next;  /* in the inbox */
    void *cookie;
    uint8_t kind;                  /* enum miss_kind */
    int result;                    /* MK_OK found (now in memory), MK_ENOTFOUND,
                                    * MK_EUNAVAIL (store down or shutting down) */
};

struct resolver_cfg {
    uint32_t queue_max;        /* distinct keys waiting for a read */
    uint32_t cache_max;        /* negative answers kept */
    uint32_t negative_ttl_s;   /* how long; 0: none kept */
};

/* Lookup outcomes, the label order of /metrics. */
enum resolver_outcome {
    RESOLVE_FOUND,
    RESOLVE_NOT_FOUND,
    RESOLVE_CACHED_NEGATIVE,
    RESOLVE_QUEUE_FULL,
    RESOLVE_STORE_ERROR,
    RESOLVE_COALESCED,
};
#define RESOLVE_OUTCOMES 6
#define RESOLVE_LATENCY_BUCKETS 10

struct resolver_stats {
    uint64_t lookups[MISS_KINDS][RESOLVE_OUTCOMES];
    uint64_t latency[RESOLVE_LATENCY_BUCKETS + 1]; /* store reads by duration */
    uint64_t latency_ns_sum;
    uint64_t reads;
};

/* A resolver reading st (borrowed; used only by the resolver's thread from
 * start to stop) and inserting what it finds into users and torrents with
 * the generation *generation holds (the loader's: a SIGHUP sweep keeps
 * them). No thread yet. */
int resolver_new(struct resolver **out, const struct resolver_cfg *cfg, struct store *st,
                 struct users *users, struct torrents *torrents,
                 const _Atomic uint32_t *generation, struct mk_errbuf *eb);
int resolver_start(struct resolver *r, struct mk_errbuf *eb);
/* Joins the thread, then answers every ticket still waiting with
 * MK_EUNAVAIL (posted to its inbox). Call after the workers stopped and
 * before their inboxes are freed. */
void resolver_stop(struct resolver *r);
void resolver_free(struct resolver *r);

/* Asks for key on behalf of a request: MK_OK and *out a ticket that will
 * come back through inbox with the answer (already posted, with MK_OK and
 * no store read, if the key is in memory by now: a read that just finished
 * put it there); or, at once and without a ticket, MK_ENOTFOUND (a negative
 * answer still fresh), MK_ELIMIT (the queue is full: try again later) or
 * MK_ENOMEM. O(1); takes the resolver's mutex for a hash lookup and, under
 * it, one users or torrents shard lock. */
int resolver_submit(struct resolver *r, struct resolver_inbox *inbox, const struct miss_key *key,
                    void *cookie, struct resolver_ticket **out);
void resolver_ticket_free(struct resolver_ticket *t);

/* A worker's inbox: a pipe whose read end the worker's loop watches. */
int resolver_inbox_new(struct resolver_inbox **out, struct mk_errbuf *eb);
int resolver_inbox_fd(const struct resolver_inbox *in);
/* Empties the pipe and returns every posted ticket (oldest first), or NULL. */
struct resolver_ticket *resolver_inbox_take(struct resolver_inbox *in);
/* Frees the inbox and any ticket still in it. */
void resolver_inbox_free(struct resolver_inbox *in);

void resolver_stats_read(const struct resolver *r, struct resolver_stats *out);
const char *resolver_outcome_label(unsigned i);
const char *resolver_kind_label(unsigned kind);
double resolver_latency_bound(unsigned i);

#endif /* MIKA_AUTH_RESOLVER_H */
