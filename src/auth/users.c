/* auth/users.c: registered users by passkey, in memory.
 *
 * Owns: a table split into a power-of-two number of shards, each a chained
 * hash table behind its own mutex. An entry holds a copy of the passkey, the
 * user's id and flags, and the generation of the load that last saw it.
 * Not here: loading from the store, the admin API's changes.
 * Invariants:
 * - Hashes are SipHash-2-4 under a random key drawn at users_new, so nobody
 *   who chooses passkeys can aim them at one chain. The high bits pick the
 *   shard, the low bits the bucket, so the two choices are independent.
 * - A lookup holds one shard lock for a chain walk and a copy; no pointer to
 *   an entry leaves a lock.
 * - Each shard doubles its buckets when it holds more entries than buckets,
 *   up to USERS_BUCKETS_MAX; past that, chains lengthen instead. A doubling
 *   rehashes one shard (O(its entries)) under its lock, so it stalls only
 *   lookups that land on that shard, and only on puts (never on finds).
 *   Shards never shrink. users_sweep and users_count take the shards' locks
 *   one at a time, never two at once.
 * - nshards is clamped to USERS_MAX_SHARDS.
 */
#include "auth/users.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util/siphash.h"

#define USERS_DEFAULT_SHARDS 64
#define USERS_MAX_SHARDS (1u << 16)   /* larger requests are clamped */
#define USERS_BUCKETS_MIN 16
#define USERS_BUCKETS_MAX (1u << 24)  /* per shard */
#define USERS_SHARD_SHIFT 40          /* shard bits sit above any bucket bits */

struct users_entry {
    struct users_entry *next;
    uint64_t hash;
    uint32_t id;
    uint32_t generation;
    bool enabled;
    bool can_download;
    uint32_t class_up, class_down;
    uint32_t personal_up, personal_down;
    uint8_t len;
    char passkey[]; /* len bytes, not NUL-terminated */
};

/* Aligned to a cache line so that two workers locking neighbouring shards
 * do not bounce one line between cores. */
struct users_shard {
    _Alignas(64) pthread_mutex_t mu;
    struct users_entry **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
};

struct users {
    uint32_t nshards; /* power of two */
    uint8_t key[16];
    struct users_shard *shards;
};

static uint32_t users_round_shards(uint32_t n)
{
    uint32_t p = 1;

    if (n == 0) {
        return USERS_DEFAULT_SHARDS;
    }
    if (n > USERS_MAX_SHARDS) {
        return USERS_MAX_SHARDS;
    }
    while (p < n) {
        p <<= 1;
    }
    return p;
}

static bool users_fill_key(uint8_t key[16])
{
    size_t got = 0;

    while (got < 16) {
        ssize_t r = getrandom(key + got, 16 - got, 0);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        got += (size_t)r;
    }
    return true;
}

struct users *users_new(uint32_t nshards)
{
    struct users *u = calloc(1, sizeof(*u));
    uint32_t i;

    if (u == NULL) {
        return NULL;
    }
    u->nshards = users_round_shards(nshards);
    if (!users_fill_key(u->key)) {
        goto out_free_users;
    }
    /* sizeof(struct users_shard) is a multiple of its 64-byte alignment. */
    u->shards = aligned_alloc(_Alignof(struct users_shard),
                              (size_t)u->nshards * sizeof(*u->shards));
    if (u->shards == NULL) {
        goto out_free_users;
    }
    for (i = 0; i < u->nshards; i++) {
        struct users_shard *s = &u->shards[i];

        s->count = 0;
        s->nbuckets = USERS_BUCKETS_MIN;
        s->buckets = calloc(USERS_BUCKETS_MIN, sizeof(*s->buckets));
        if (s->buckets == NULL) {
            goto out_free_shards;
        }
        if (pthread_mutex_init(&s->mu, NULL) != 0) {
            free(s->buckets);
            goto out_free_shards;
        }
    }
    return u;

out_free_shards:
    while (i-- > 0) {
        pthread_mutex_destroy(&u->shards[i].mu);
        free(u->shards[i].buckets);
    }
    free(u->shards);
out_free_users:
    free(u);
    return NULL;
}

void users_free(struct users *u)
{
    if (u == NULL) {
        return;
    }
    for (uint32_t i = 0; i < u->nshards; i++) {
        struct users_shard *s = &u->shards[i];

        for (size_t b = 0; b < s->nbuckets; b++) {
            struct users_entry *e = s->buckets[b];
            while (e != NULL) {
                struct users_entry *next = e->next;
                free(e);
                e = next;
            }
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->mu);
    }
    free(u->shards);
    free(u);
}

static struct users_shard *users_shard_of(struct users *u, uint64_t hash)
{
    return &u->shards[(hash >> USERS_SHARD_SHIFT) & (u->nshards - 1)];
}

/* The caller holds s->mu. */
static struct users_entry **users_slot(struct users_shard *s, uint64_t hash, const char *passkey,
                                       size_t len)
{
    struct users_entry **pe = &s->buckets[hash & (s->nbuckets - 1)];

    for (; *pe != NULL; pe = &(*pe)->next) {
        const struct users_entry *e = *pe;
        if (e->hash == hash && e->len == len && memcmp(e->passkey, passkey, len) == 0) {
            break;
        }
    }
    return pe;
}

/* The caller holds s->mu. Failure to allocate keeps the old buckets: the
 * table stays correct, only its chains get longer. */
static void users_shard_grow(struct users_shard *s)
{
    size_t n = s->nbuckets * 2;
    struct users_entry **nb;

    if (n > USERS_BUCKETS_MAX) {
        return;
    }
    nb = calloc(n, sizeof(*nb));
    if (nb == NULL) {
        return;
    }
    for (size_t b = 0; b < s->nbuckets; b++) {
        struct users_entry *e = s->buckets[b];
        while (e != NULL) {
            struct users_entry *next = e->next;
            size_t to = e->hash & (n - 1);
            e->next = nb[to];
            nb[to] = e;
            e = next;
        }
    }
    free(s->buckets);
    s->buckets = nb;
    s->nbuckets = n;
}

bool users_find(struct users *u, const char *passkey, size_t len, struct user_info *out)
{
    struct users_shard *s;
    struct users_entry *e;
    uint64_t hash;

    if (passkey == NULL || len == 0 || len > MK_PASSKEY_MAX) {
        return false;
    }
    hash = siphash24(passkey, len, u->key);
    s = users_shard_of(u, hash);
    pthread_mutex_lock(&s->mu);
    e = *users_slot(s, hash, passkey, len);
    if (e != NULL) {
        out->id = e->id;
        out->enabled = e->enabled;
        out->can_download = e->can_download;
        out->class_up = e->class_up;
        out->class_down = e->class_down;
        out->personal_up = e->personal_up;
        out->personal_down = e->personal_down;
    }
    pthread_mutex_unlock(&s->mu);
    return e != NULL;
}

int users_put(struct users *u, const struct user_row *row, uint32_t generation)
{
    struct users_shard *s;
    struct users_entry **pe;
    struct users_entry *e;
    uint64_t hash;
    size_t len;

    if (row == NULL) {
        return MK_EINVAL;
    }
    /* No NUL within the array means the passkey is longer than the maximum. */
    len = strnlen(row->passkey, sizeof(row->passkey));
    if (len == 0 || len > MK_PASSKEY_MAX) {
        return MK_EINVAL;
    }
    hash = siphash24(row->passkey, len, u->key);
    s = users_shard_of(u, hash);
    pthread_mutex_lock(&s->mu);
    pe = users_slot(s, hash, row->passkey, len);
    e = *pe;
    if (e == NULL) {
        e = malloc(sizeof(*e) + len);
        if (e == NULL) {
            pthread_mutex_unlock(&s->mu);
            return MK_ENOMEM;
        }
        e->next = NULL;
        e->hash = hash;
        e->len = (uint8_t)len;
        memcpy(e->passkey, row->passkey, len);
        *pe = e;
        s->count++;
    }
    e->id = row->id;
    e->enabled = row->enabled;
    e->can_download = row->can_download;
    /* A row without multipliers counts as 1.0x, never as 0. */
    e->class_up = row->has_mults ? row->class_up : 1000;
    e->class_down = row->has_mults ? row->class_down : 1000;
    e->personal_up = row->has_mults ? row->personal_up : 1000;
    e->personal_down = row->has_mults ? row->personal_down : 1000;
    e->generation = generation;
    if (s->count > s->nbuckets) {
        users_shard_grow(s);
    }
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* Removes every entry doomed(e, arg) says goes, one shard lock at a time:
 * a full walk, for the rare sweeps (after a reload, or a user's passkeys). */
static uint32_t users_remove_where(struct users *u,
                                   bool (*doomed)(const struct users_entry *e, const void *arg),
                                   const void *arg)
{
    size_t removed = 0;
    for (uint32_t i = 0; i < u->nshards; i++) {
        struct users_shard *s = &u->shards[i];
        pthread_mutex_lock(&s->mu);
        for (size_t b = 0; b < s->nbuckets; b++) {
            struct users_entry **pe = &s->buckets[b];
            while (*pe != NULL) {
                struct users_entry *e = *pe;
                if (doomed(e, arg)) {
                    *pe = e->next;
                    free(e);
                    s->count--;
                    removed++;
                } else {
                    pe = &e->next;
                }
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
    return removed > UINT32_MAX ? UINT32_MAX : (uint32_t)removed;
}

static bool users_older_than(const struct users_entry *e, const void *arg)
{
    return e->generation != *(const uint32_t *)arg;
}

uint32_t users_sweep(struct users *u, uint32_t generation)
{
    return users_remove_where(u, users_older_than, &generation);
}

size_t users_count(struct users *u)
{
    size_t n = 0;

    for (uint32_t i = 0; i < u->nshards; i++) {
        pthread_mutex_lock(&u->shards[i].mu);
        n += u->shards[i].count;
        pthread_mutex_unlock(&u->shards[i].mu);
    }
    return n;
}

bool users_remove(struct users *u, const char *passkey, size_t len)
{
    if (passkey == NULL || len == 0 || len > MK_PASSKEY_MAX) {
        return false;
    }
    uint64_t hash = siphash24(passkey, len, u->key);
    struct users_shard *s = users_shard_of(u, hash);
    pthread_mutex_lock(&s->mu);
    struct users_entry **pe = users_slot(s, hash, passkey, len);
    struct users_entry *e = *pe;
    if (e != NULL) {
        *pe = e->next;
        s->count--;
    }
    pthread_mutex_unlock(&s->mu);
    free(e);
    return e != NULL;
}

struct users_id_match {
    uint32_t id;
    const char *keep;
    size_t keep_len;
};

static bool users_other_passkey_of(const struct users_entry *e, const void *arg)
{
    const struct users_id_match *m = arg;
    return e->id == m->id && !(e->len == m->keep_len && memcmp(e->passkey, m->keep, m->keep_len) == 0);
}

uint32_t users_remove_id(struct users *u, uint32_t id, const char *keep)
{
    struct users_id_match m = {id, keep, keep ? strlen(keep) : 0};
    return users_remove_where(u, users_other_passkey_of, &m);
}
