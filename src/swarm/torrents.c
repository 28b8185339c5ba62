/* swarm/torrents.c: every registered torrent and its swarm, in memory.
 *
 * Owns: the sharded hash table (one mutex per shard, chained buckets), the
 * torrents in it, and the table's random SipHash key.
 * Not here: what an announce means (net/), loading rows (serve.c), the peer
 * set itself (peers.c).
 * Invariants:
 *  - a torrent lives in shard h & (nshards - 1) and bucket
 *    (h >> 32) & (nbuckets - 1), h = siphash(info_hash, table key): info_hashes
 *    are chosen by uploaders, so without the key one could pile torrents into
 *    one chain or one shard;
 *  - torrents are never freed before torrents_free (a torrent the store drops
 *    is only marked deleted), so a shard holds its torrents' memory for the
 *    table's lifetime and a torrent pointer stays valid under its shard lock;
 *  - a shard grows by rehashing itself only, under its own lock, so no
 *    operation ever holds two shard locks.
 */
#include "swarm/torrents.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util/siphash.h"

#define TORRENTS_DEFAULT_SHARDS 256u
#define TORRENTS_SHARD_MIN_BUCKETS 16u

struct torrent_shard {
    /* Aligned so that two shards' locks never share a cache line. */
    _Alignas(64) pthread_mutex_t mu;
    struct torrent **buckets;
    uint32_t nbuckets; /* power of two; grows when n exceeds it */
    uint32_t n;
};

struct torrents {
    struct torrent_shard *shards;
    uint32_t nshards;
    _Atomic uint32_t count; /* every torrent, for TORRENTS_MAX_TORRENTS */
    uint8_t key[16];
};

static uint64_t torrents_hash(const struct torrents *t, const uint8_t info_hash[20])
{
    return siphash24(info_hash, 20, t->key);
}

static struct torrent_shard *torrents_shard_of(const struct torrents *t, uint64_t h)
{
    return &t->shards[h & (t->nshards - 1)];
}

static struct torrent **torrents_bucket(const struct torrent_shard *s, uint64_t h)
{
    return &s->buckets[(h >> 32) & (s->nbuckets - 1)];
}

struct torrents *torrents_new(uint32_t nshards)
{
    if (nshards == 0) {
        nshards = TORRENTS_DEFAULT_SHARDS;
    }
    if (nshards > TORRENTS_MAX_SHARDS) {
        nshards = TORRENTS_MAX_SHARDS;
    }
    uint32_t pow2 = 1;
    while (pow2 < nshards) {
        pow2 *= 2;
    }

    struct torrents *t = calloc(1, sizeof(*t));
    if (!t) {
        return NULL;
    }
    if (getrandom(t->key, sizeof(t->key), 0) != (ssize_t)sizeof(t->key)) {
        free(t);
        return NULL;
    }
    t->shards = aligned_alloc(_Alignof(struct torrent_shard), pow2 * sizeof(*t->shards));
    if (!t->shards) {
        free(t);
        return NULL;
    }
    for (uint32_t i = 0; i < pow2; i++) {
        struct torrent_shard *s = &t->shards[i];
        memset(s, 0, sizeof(*s));
        s->buckets = calloc(TORRENTS_SHARD_MIN_BUCKETS, sizeof(*s->buckets));
        if (!s->buckets || pthread_mutex_init(&s->mu, NULL) != 0) {
            free(s->buckets);
            t->nshards = i;
            torrents_free(t);
            return NULL;
        }
        s->nbuckets = TORRENTS_SHARD_MIN_BUCKETS;
    }
    t->nshards = pow2;
    atomic_init(&t->count, 0);
    return t;
}

static void torrent_destroy(struct torrent *tor)
{
    peerset_fini(&tor->v4);
    peerset_fini(&tor->v6);
    u32set_fini(&tor->snatchers);
    free(tor->tokens);
    free(tor->reason);
    free(tor);
}

void torrents_free(struct torrents *t)
{
    if (!t) {
        return;
    }
    for (uint32_t i = 0; i < t->nshards; i++) {
        struct torrent_shard *s = &t->shards[i];
        for (uint32_t b = 0; b < s->nbuckets; b++) {
            struct torrent *tor = s->buckets[b];
            while (tor) {
                struct torrent *next = tor->next;
                torrent_destroy(tor);
                tor = next;
            }
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->mu);
    }
    free(t->shards);
    free(t);
}

uint32_t torrents_nshards(const struct torrents *t)
{
    return t->nshards;
}

static struct torrent *torrents_find(const struct torrent_shard *s, uint64_t h,
                                     const uint8_t info_hash[20])
{
    for (struct torrent *tor = *torrents_bucket(s, h); tor; tor = tor->next) {
        if (memcmp(tor->info_hash, info_hash, 20) == 0) {
            return tor;
        }
    }
    return NULL;
}

struct torrent *torrents_lock(struct torrents *t, const uint8_t info_hash[20],
                              struct torrent_shard **shard)
{
    uint64_t h = torrents_hash(t, info_hash);
    struct torrent_shard *s = torrents_shard_of(t, h);
    pthread_mutex_lock(&s->mu);
    *shard = s;
    return torrents_find(s, h, info_hash);
}

void torrents_unlock(struct torrent_shard *shard)
{
    pthread_mutex_unlock(&shard->mu);
}

/* Doubles the shard's buckets, rehashing only this shard. A failed
 * allocation is not an error: the chains just stay longer until next time. */
static void torrents_shard_grow(const struct torrents *t, struct torrent_shard *s)
{
    uint32_t nbuckets = s->nbuckets * 2;
    struct torrent **buckets = calloc(nbuckets, sizeof(*buckets));
    if (!buckets) {
        return;
    }
    for (uint32_t b = 0; b < s->nbuckets; b++) {
        struct torrent *tor = s->buckets[b];
        while (tor) {
            struct torrent *next = tor->next;
            uint64_t h = torrents_hash(t, tor->info_hash);
            struct torrent **head = &buckets[(h >> 32) & (nbuckets - 1)];
            tor->next = *head;
            *head = tor;
            tor = next;
        }
    }
    free(s->buckets);
    s->buckets = buckets;
    s->nbuckets = nbuckets;
}

/* The row's reason as an owned string, NULL for none; false on ENOMEM. */
static bool torrents_dup_reason(const struct torrent_row *row, char **out)
{
    *out = NULL;
    if (row->reason[0] == '\0') {
        return true;
    }
    *out = strndup(row->reason, MK_REASON_MAX);
    return *out != NULL;
}

static void torrents_apply_row(struct torrent *tor, const struct torrent_row *row, char *reason,
                               uint32_t generation)
{
    tor->id = row->id;
    tor->enabled = row->enabled;
    tor->deleted = row->deleted;
    /* A row without multipliers counts as 1.0x, never as 0. */
    tor->freeleech = row->has_mults && row->freeleech;
    tor->up_mult = row->has_mults ? row->up_mult : 1000;
    tor->down_mult = row->has_mults ? row->down_mult : 1000;
    tor->size = row->has_mults ? row->size : 0;
    free(tor->reason);
    tor->reason = reason;
    if (row->snatches > tor->snatches) {
        tor->snatches = row->snatches;
    }
    tor->generation = generation;
}

static int torrents_insert(struct torrents *t, struct torrent_shard *s, uint64_t h,
                           const struct torrent_row *row, char *reason, uint32_t generation)
{
    if (atomic_fetch_add(&t->count, 1) >= TORRENTS_MAX_TORRENTS) {
        atomic_fetch_sub(&t->count, 1);
        free(reason);
        return MK_ELIMIT;
    }
    struct torrent *tor = calloc(1, sizeof(*tor));
    if (!tor) {
        atomic_fetch_sub(&t->count, 1);
        free(reason);
        return MK_ENOMEM;
    }
    memcpy(tor->info_hash, row->info_hash, 20);
    peerset_init(&tor->v4, PEER_V4);
    peerset_init(&tor->v6, PEER_V6);
    u32set_init(&tor->snatchers);
    torrents_apply_row(tor, row, reason, generation);

    /* Load factor 1 on average: a lookup walks about one torrent. */
    if (s->n + 1 > s->nbuckets && s->nbuckets < TORRENTS_MAX_TORRENTS) {
        torrents_shard_grow(t, s);
    }
    struct torrent **head = torrents_bucket(s, h);
    tor->next = *head;
    *head = tor;
    s->n++;
    return 0;
}

int torrents_put(struct torrents *t, const struct torrent_row *row, uint32_t generation)
{
    char *reason;
    if (!torrents_dup_reason(row, &reason)) {
        return MK_ENOMEM;
    }
    uint64_t h = torrents_hash(t, row->info_hash);
    struct torrent_shard *s = torrents_shard_of(t, h);
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    struct torrent *tor = torrents_find(s, h, row->info_hash);
    if (tor) {
        torrents_apply_row(tor, row, reason, generation);
    } else {
        rc = torrents_insert(t, s, h, row, reason, generation);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

uint32_t torrents_sweep(struct torrents *t, uint32_t generation)
{
    uint32_t swept = 0;
    for (uint32_t i = 0; i < t->nshards; i++) {
        struct torrent_shard *s = &t->shards[i];
        pthread_mutex_lock(&s->mu);
        for (uint32_t b = 0; b < s->nbuckets; b++) {
            for (struct torrent *tor = s->buckets[b]; tor; tor = tor->next) {
                if (tor->generation != generation && !tor->deleted) {
                    tor->deleted = true;
                    swept++;
                }
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
    return swept;
}

bool torrent_snatch(struct torrent *tor, uint32_t user_id)
{
    int rc = u32set_add(&tor->snatchers, user_id);
    if (rc == 1) {
        tor->snatches++;
        return true;
    }
    /* rc < 0: we cannot tell a repeat from a first; the store can. */
    return rc < 0;
}

int torrents_load_snatch(struct torrents *t, const uint8_t info_hash[20], uint32_t user_id)
{
    struct torrent_shard *s;
    struct torrent *tor = torrents_lock(t, info_hash, &s);
    int rc = MK_ENOTFOUND;
    if (tor) {
        rc = u32set_add(&tor->snatchers, user_id);
        if (rc > 0) {
            rc = 0;
        }
    }
    torrents_unlock(s);
    return rc;
}

uint32_t torrents_reap_shard(struct torrents *t, uint32_t shard, uint32_t cutoff)
{
    if (shard >= t->nshards) {
        return 0;
    }
    struct torrent_shard *s = &t->shards[shard];
    uint32_t removed = 0;
    pthread_mutex_lock(&s->mu);
    for (uint32_t b = 0; b < s->nbuckets; b++) {
        for (struct torrent *tor = s->buckets[b]; tor; tor = tor->next) {
            removed += peerset_expire(&tor->v4, cutoff);
            removed += peerset_expire(&tor->v6, cutoff);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return removed;
}

void torrents_totals(struct torrents *t, struct torrents_totals *out)
{
    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; i < t->nshards; i++) {
        struct torrent_shard *s = &t->shards[i];
        pthread_mutex_lock(&s->mu);
        for (uint32_t b = 0; b < s->nbuckets; b++) {
            for (const struct torrent *tor = s->buckets[b]; tor; tor = tor->next) {
                out->torrents += !tor->deleted;
                out->seeders += peerset_seeders(&tor->v4) + peerset_seeders(&tor->v6);
                out->leechers += peerset_leechers(&tor->v4) + peerset_leechers(&tor->v6);
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
}

/* Walks backwards: a removal only moves peers from higher positions down,
 * and those have been looked at already. */
static uint32_t torrents_remove_user_from(struct peerset *ps, uint32_t user_id)
{
    uint32_t removed = 0;
    for (uint32_t i = ps->n; i-- > 0;) {
        if (ps->peers[i].user_id == user_id && peerset_remove(ps, ps->peers[i].key, NULL)) {
            removed++;
        }
    }
    return removed;
}

uint32_t torrents_remove_user(struct torrents *t, uint32_t user_id)
{
    uint32_t removed = 0;
    for (uint32_t i = 0; i < t->nshards; i++) {
        struct torrent_shard *s = &t->shards[i];
        pthread_mutex_lock(&s->mu);
        for (uint32_t b = 0; b < s->nbuckets; b++) {
            for (struct torrent *tor = s->buckets[b]; tor; tor = tor->next) {
                removed += torrents_remove_user_from(&tor->v4, user_id);
                removed += torrents_remove_user_from(&tor->v6, user_id);
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
    return removed;
}

uint32_t torrents_clear_peers(struct torrents *t, const uint8_t info_hash[20])
{
    struct torrent_shard *s;
    struct torrent *tor = torrents_lock(t, info_hash, &s);
    uint32_t removed = 0;
    if (tor) {
        /* Every peer is older than UINT32_MAX: expiry with that cutoff empties
         * the set and gives its memory back. */
        removed += peerset_expire(&tor->v4, UINT32_MAX);
        removed += peerset_expire(&tor->v6, UINT32_MAX);
    }
    torrents_unlock(s);
    return removed;
}

void torrents_each(struct torrents *t, void (*fn)(const struct torrent *tor, void *arg),
                   void *arg)
{
    for (uint32_t i = 0; i < t->nshards; i++) {
        struct torrent_shard *s = &t->shards[i];
        pthread_mutex_lock(&s->mu);
        for (uint32_t b = 0; b < s->nbuckets; b++) {
            for (const struct torrent *tor = s->buckets[b]; tor; tor = tor->next) {
                fn(tor, arg);
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
}

/* ---- a cluster's swarm counts -------------------------------------------- */

void torrents_counts_changed(struct torrents *t, bool all, torrents_count_fn fn, void *arg)
{
    for (uint32_t i = 0; i < t->nshards; i++) {
        struct torrent_shard *s = &t->shards[i];
        pthread_mutex_lock(&s->mu);
        for (uint32_t b = 0; b < s->nbuckets; b++) {
            for (struct torrent *tor = s->buckets[b]; tor; tor = tor->next) {
                struct swarm_count_row row = {
                    .seeders = peerset_seeders(&tor->v4) + peerset_seeders(&tor->v6),
                    .leechers = peerset_leechers(&tor->v4) + peerset_leechers(&tor->v6),
                    .snatches = tor->snatches,
                    .announced_at = tor->announced_at,
                };
                bool had = tor->published_seeders || tor->published_leechers;
                if (!had && row.seeders == 0 && row.leechers == 0) {
                    continue; /* nothing published, nothing to publish */
                }
                bool moved = row.seeders != tor->published_seeders ||
                             row.leechers != tor->published_leechers ||
                             row.snatches != tor->published_snatches ||
                             row.announced_at != tor->published_announced_at;
                if (moved || all) {
                    memcpy(row.info_hash, tor->info_hash, 20);
                    fn(&row, arg);
                    tor->published_seeders = row.seeders;
                    tor->published_leechers = row.leechers;
                    tor->published_snatches = row.snatches;
                    tor->published_announced_at = row.announced_at;
                }
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
}

void torrents_set_remote(struct torrents *t, const uint8_t info_hash[20], uint32_t seeders,
                         uint32_t leechers, uint32_t snatches, uint32_t announced_at,
                         uint32_t stamp)
{
    struct torrent_shard *s;
    struct torrent *tor = torrents_lock(t, info_hash, &s);
    if (tor) {
        tor->remote_seeders = seeders;
        tor->remote_leechers = leechers;
        tor->remote_announced_at = announced_at;
        tor->remote_stamp = stamp;
        /* Snatches only grow: another node's count is a lower bound of the
         * torrent's, as a reload's is (torrents_put). */
        if (snatches > tor->snatches) {
            tor->snatches = snatches;
        }
    }
    torrents_unlock(s);
}

void torrents_clear_remote(struct torrents *t, uint32_t stamp)
{
    for (uint32_t i = 0; i < t->nshards; i++) {
        struct torrent_shard *s = &t->shards[i];
        pthread_mutex_lock(&s->mu);
        for (uint32_t b = 0; b < s->nbuckets; b++) {
            for (struct torrent *tor = s->buckets[b]; tor; tor = tor->next) {
                if (tor->remote_stamp != stamp) {
                    tor->remote_seeders = tor->remote_leechers = 0;
                    tor->remote_announced_at = 0;
                }
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
}

void torrent_swarm_counts(const struct torrent *tor, uint32_t *seeders, uint32_t *leechers)
{
    if (tor->announced_at >= tor->remote_announced_at) {
        *seeders = peerset_seeders(&tor->v4) + peerset_seeders(&tor->v6);
        *leechers = peerset_leechers(&tor->v4) + peerset_leechers(&tor->v6);
    } else {
        *seeders = tor->remote_seeders;
        *leechers = tor->remote_leechers;
    }
}

/* ---- freeleech tokens -------------------------------------------------- */

/* Index of the first token with user_id >= id. */
static uint32_t token_lower_bound(const struct torrent *tor, uint32_t id)
{
    uint32_t lo = 0, hi = tor->ntokens;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (tor->tokens[mid].user_id < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

const struct torrent_token *torrent_token_find(const struct torrent *tor, uint32_t user_id,
                                               int64_t now)
{
    uint32_t i = token_lower_bound(tor, user_id);
    if (i == tor->ntokens || tor->tokens[i].user_id != user_id) {
        return NULL;
    }
    const struct torrent_token *tok = &tor->tokens[i];
    return tok->expires != 0 && now >= tok->expires ? NULL : tok;
}

int torrents_set_token(struct torrents *t, const uint8_t info_hash[20],
                       const struct torrent_token *tok)
{
    struct torrent_shard *shard;
    struct torrent *tor = torrents_lock(t, info_hash, &shard);
    int rc = MK_OK;
    if (!tor) {
        rc = MK_ENOTFOUND;
        goto out_unlock;
    }
    uint32_t i = token_lower_bound(tor, tok->user_id);
    if (i < tor->ntokens && tor->tokens[i].user_id == tok->user_id) {
        tor->tokens[i] = *tok;
        goto out_unlock;
    }
    if (tor->ntokens == TORRENT_TOKENS_MAX) {
        rc = MK_ELIMIT;
        goto out_unlock;
    }
    struct torrent_token *grown = realloc(tor->tokens, (tor->ntokens + 1) * sizeof(*grown));
    if (!grown) {
        rc = MK_ENOMEM;
        goto out_unlock;
    }
    tor->tokens = grown;
    memmove(&grown[i + 1], &grown[i], (tor->ntokens - i) * sizeof(*grown));
    grown[i] = *tok;
    tor->ntokens++;
out_unlock:
    torrents_unlock(shard);
    return rc;
}

int torrents_set_selection(struct torrents *t, const uint8_t info_hash[20], uint8_t kind)
{
    struct torrent_shard *shard;
    struct torrent *tor = torrents_lock(t, info_hash, &shard);
    if (tor) {
        tor->selection = kind;
    }
    torrents_unlock(shard);
    return tor ? MK_OK : MK_ENOTFOUND;
}

bool torrents_drop_token(struct torrents *t, const uint8_t info_hash[20], uint32_t user_id)
{
    struct torrent_shard *shard;
    struct torrent *tor = torrents_lock(t, info_hash, &shard);
    bool dropped = false;
    if (tor) {
        uint32_t i = token_lower_bound(tor, user_id);
        if (i < tor->ntokens && tor->tokens[i].user_id == user_id) {
            memmove(&tor->tokens[i], &tor->tokens[i + 1],
                    (tor->ntokens - i - 1) * sizeof(*tor->tokens));
            tor->ntokens--;
            dropped = true;
        }
    }
    torrents_unlock(shard);
    return dropped;
}
