/* auth/resolver.c: the miss path's thread: store reads for keys that missed
 * memory, and the answers' way back to the workers.
 *
 * Owns: the resolver thread, its mutex (over the miss cache and the stop
 * flag) and condition variable, the store reads of one lookup, inserting
 * what they found into users and torrents (as the loader and the admin API
 * do), the workers' inboxes, and the lookup counters.
 * Not here: the cache's rules (misscache.c), what a worker does with an
 * answer (net/server.c).
 * Invariants:
 * - The mutex is held for O(1) cache calls and one in-memory lookup only,
 *   never across a store read, so a worker submitting a miss never waits on
 *   the store. Lock order: the mutex, then a users or torrents shard lock;
 *   nothing takes the mutex under a shard lock.
 * - What a read found is in memory before misscache_done forgets its pending
 *   entry and before its waiters are posted, so the resumed request finds it
 *   there, and a submit that finds no entry but the key in memory (see
 *   resolver_submit) needs no read.
 * - Every ticket submitted is posted exactly once: by its read, by
 *   resolver_submit itself when the key is in memory already, or by
 *   resolver_stop's drain.
 */
#include "auth/resolver.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

struct resolver_inbox {
    pthread_mutex_t mu;
    struct resolver_ticket *head, *tail;
    int fds[2]; /* pipe: a byte is written when the list goes from empty to not */
};

struct resolver {
    struct store *st;
    struct users *users;
    struct torrents *torrents;
    const _Atomic uint32_t *generation;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    bool started;
    pthread_t thread;
    struct misscache *cache;
    _Atomic uint64_t lookups[MISS_KINDS][RESOLVE_OUTCOMES];
    _Atomic uint64_t latency[RESOLVE_LATENCY_BUCKETS + 1];
    _Atomic uint64_t latency_ns_sum;
    _Atomic uint64_t reads;
};

static const double latency_bounds[RESOLVE_LATENCY_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
};

static const char *const outcome_labels[RESOLVE_OUTCOMES] = {
    [RESOLVE_FOUND] = "found",
    [RESOLVE_NOT_FOUND] = "not_found",
    [RESOLVE_CACHED_NEGATIVE] = "cached_negative",
    [RESOLVE_QUEUE_FULL] = "queue_full",
    [RESOLVE_STORE_ERROR] = "store_error",
    [RESOLVE_COALESCED] = "coalesced",
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void count(struct resolver *r, unsigned kind, enum resolver_outcome o)
{
    atomic_fetch_add_explicit(&r->lookups[kind][o], 1, memory_order_relaxed);
}

/* ---- inboxes ----------------------------------------------------------- */

int resolver_inbox_new(struct resolver_inbox **out, struct mk_errbuf *eb)
{
    struct resolver_inbox *in = calloc(1, sizeof(*in));
    if (!in) {
        return mk_fail(eb, MK_ENOMEM, "resolver inbox: out of memory");
    }
    if (pipe2(in->fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        int e = errno;
        free(in);
        return mk_fail(eb, MK_EIO, "resolver inbox: pipe: %s", strerror(e));
    }
    pthread_mutex_init(&in->mu, NULL);
    *out = in;
    return MK_OK;
}

int resolver_inbox_fd(const struct resolver_inbox *in)
{
    return in->fds[0];
}

static void inbox_post(struct resolver_inbox *in, struct resolver_ticket *t)
{
    t->next = NULL;
    pthread_mutex_lock(&in->mu);
    bool was_empty = in->head == NULL;
    if (in->tail) {
        in->tail->next = t;
    } else {
        in->head = t;
    }
    in->tail = t;
    if (was_empty) {
        /* One byte per batch: a full pipe already says "look". */
        ssize_t n = write(in->fds[1], "r", 1);
        (void)n;
    }
    pthread_mutex_unlock(&in->mu);
}

struct resolver_ticket *resolver_inbox_take(struct resolver_inbox *in)
{
    char buf[64];
    pthread_mutex_lock(&in->mu);
    /* Emptied under the lock, so a post that follows writes a fresh byte. */
    while (read(in->fds[0], buf, sizeof(buf)) > 0) {
    }
    struct resolver_ticket *list = in->head;
    in->head = in->tail = NULL;
    pthread_mutex_unlock(&in->mu);
    return list;
}

void resolver_inbox_free(struct resolver_inbox *in)
{
    if (!in) {
        return;
    }
    struct resolver_ticket *t = resolver_inbox_take(in);
    while (t) {
        struct resolver_ticket *next = t->next;
        free(t);
        t = next;
    }
    close(in->fds[0]);
    close(in->fds[1]);
    pthread_mutex_destroy(&in->mu);
    free(in);
}

void resolver_ticket_free(struct resolver_ticket *t)
{
    free(t);
}

/* Posts every waiter of a finished lookup with its result. */
static void post_all(struct miss_waiter *w, int result)
{
    while (w) {
        struct miss_waiter *next = w->next;
        struct resolver_ticket *t = (struct resolver_ticket *)w; /* link is the first member */
        t->result = result;
        inbox_post(t->inbox, t);
        w = next;
    }
}

/* ---- store reads ------------------------------------------------------- */

struct token_buf {
    struct token_row *rows;
    size_t n, cap;
    uint32_t user_id;        /* 0: any user, only tokens on info_hash */
    uint8_t info_hash[20];
};

static int keep_token(const struct token_row *row, void *arg)
{
    struct token_buf *b = arg;
    if (b->user_id == 0 && memcmp(row->info_hash, b->info_hash, 20) != 0) {
        return MK_OK;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        if (cap > TORRENT_TOKENS_MAX) {
            return MK_ELIMIT;
        }
        struct token_row *grown = realloc(b->rows, cap * sizeof(*grown));
        if (!grown) {
            return MK_ENOMEM;
        }
        b->rows = grown;
        b->cap = cap;
    }
    b->rows[b->n++] = *row;
    return MK_OK;
}

static void apply_tokens(struct resolver *r, const struct token_buf *b)
{
    for (size_t i = 0; i < b->n; i++) {
        const struct token_row *row = &b->rows[i];
        struct torrent_token tok = {row->user_id, row->up_mult, row->down_mult, row->expires};
        /* A token on a torrent not in memory waits for that torrent's own
         * miss (which loads the tokens on it) or the next reload. */
        torrents_set_token(r->torrents, row->info_hash, &tok);
    }
}

/* A user by passkey: the row, its class's multipliers and its tokens, put
 * into memory as the admin API does. */
static int read_user(struct resolver *r, const struct miss_key *k)
{
    char passkey[MK_PASSKEY_MAX + 1];
    memcpy(passkey, k->bytes, k->len);
    passkey[k->len] = '\0';
    struct mk_errbuf eb = {{0}};
    struct user_rec u;
    int rc = store_user_get_by_passkey(r->st, passkey, &u, &eb);
    if (rc != MK_OK) {
        return rc;
    }
    struct user_row row = u.row;
    row.has_mults = true;
    row.personal_up = u.up_mult;
    row.personal_down = u.down_mult;
    row.class_up = row.class_down = MK_MULT_ONE;
    struct class_row c;
    rc = store_class_get(r->st, u.class_id, &c, &eb);
    if (rc == MK_OK) {
        row.class_up = c.up_mult;
        row.class_down = c.down_mult;
    } else if (rc != MK_ENOTFOUND && rc != MK_ENOTSUP) {
        return rc;
    }
    struct token_buf tb = {.user_id = u.row.id};
    rc = store_load_tokens(r->st, u.row.id, (int64_t)time(NULL), keep_token, &tb, &eb);
    if (rc != MK_OK && rc != MK_ENOTSUP) {
        free(tb.rows);
        return rc;
    }
    apply_tokens(r, &tb);
    free(tb.rows);
    rc = users_put(r->users, &row, atomic_load(r->generation));
    if (rc == MK_OK) {
        mk_log(MK_LOG_INFO, "resolver", "user %u found in the store on a miss", u.row.id);
    }
    return rc;
}

/* A torrent by info_hash, put into memory as the loader does, then the
 * tokens users hold on it. */
static int read_torrent(struct resolver *r, const struct miss_key *k)
{
    struct mk_errbuf eb = {{0}};
    struct torrent_rec t;
    int rc = store_torrent_get(r->st, k->bytes, &t, &eb);
    if (rc != MK_OK) {
        return rc;
    }
    /* Tokens first, so a failed read puts nothing half into memory. Their
     * load has no filter by torrent: O(tokens), once per torrent found. */
    struct token_buf tb = {0};
    memcpy(tb.info_hash, k->bytes, 20);
    rc = store_load_tokens(r->st, 0, (int64_t)time(NULL), keep_token, &tb, &eb);
    if (rc != MK_OK && rc != MK_ENOTSUP && rc != MK_ELIMIT) {
        free(tb.rows);
        return rc;
    }
    struct torrent_row row = t.row;
    row.has_mults = true;
    row.freeleech = t.freeleech;
    row.up_mult = t.up_mult;
    row.down_mult = t.down_mult;
    row.size = t.has_size ? t.size : 0;
    rc = torrents_put(r->torrents, &row, atomic_load(r->generation));
    if (rc == MK_OK) {
        apply_tokens(r, &tb);
        mk_log(MK_LOG_INFO, "resolver", "torrent %u found in the store on a miss", t.row.id);
    }
    free(tb.rows);
    return rc;
}

/* One lookup: MK_OK (in memory now), MK_ENOTFOUND, or MK_EUNAVAIL. */
static int lookup(struct resolver *r, const struct miss_key *k)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = k->kind == MISS_PASSKEY ? read_user(r, k) : read_torrent(r, k);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    uint64_t ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u + (uint64_t)t1.tv_nsec -
                  (uint64_t)t0.tv_nsec;
    unsigned b = 0;
    while (b < RESOLVE_LATENCY_BUCKETS && (double)ns > latency_bounds[b] * 1e9) {
        b++;
    }
    atomic_fetch_add_explicit(&r->latency[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->latency_ns_sum, ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->reads, 1, memory_order_relaxed);
    if (rc == MK_OK) {
        count(r, k->kind, RESOLVE_FOUND);
        return MK_OK;
    }
    if (rc == MK_ENOTFOUND) {
        count(r, k->kind, RESOLVE_NOT_FOUND);
        return MK_ENOTFOUND;
    }
    count(r, k->kind, RESOLVE_STORE_ERROR);
    /* A backend that cannot look rows up one at a time: answer as before
     * there was a miss path, and cache it like any "no such row". */
    return rc == MK_ENOTSUP ? MK_ENOTFOUND : MK_EUNAVAIL;
}

static void *resolver_main(void *arg)
{
    struct resolver *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stopping) {
        struct miss_key k;
        if (!misscache_next(r->cache, &k)) {
            pthread_cond_wait(&r->cv, &r->mu);
            continue;
        }
        pthread_mutex_unlock(&r->mu);
        int rc = lookup(r, &k);
        pthread_mutex_lock(&r->mu);
        struct miss_waiter *w = misscache_done(r->cache, &k, rc == MK_ENOTFOUND, mono_ms());
        pthread_mutex_unlock(&r->mu);
        post_all(w, rc);
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ---- life cycle -------------------------------------------------------- */

int resolver_new(struct resolver **out, const struct resolver_cfg *cfg, struct store *st,
                 struct users *users, struct torrents *torrents,
                 const _Atomic uint32_t *generation, struct mk_errbuf *eb)
{
    struct resolver *r = calloc(1, sizeof(*r));
    if (!r) {
        return mk_fail(eb, MK_ENOMEM, "resolver: out of memory");
    }
    int rc = misscache_new(&r->cache, cfg->queue_max, cfg->cache_max,
                           cfg->negative_ttl_s * 1000u);
    if (rc != MK_OK) {
        free(r);
        return mk_fail(eb, rc, "resolver: cannot create the miss cache (%s)", mk_err_name(rc));
    }
    r->st = st;
    r->users = users;
    r->torrents = torrents;
    r->generation = generation;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    *out = r;
    return MK_OK;
}

int resolver_start(struct resolver *r, struct mk_errbuf *eb)
{
    int rc = pthread_create(&r->thread, NULL, resolver_main, r);
    if (rc != 0) {
        return mk_fail(eb, MK_EIO, "resolver: cannot start thread: %s", strerror(rc));
    }
    r->started = true;
    return MK_OK;
}

void resolver_stop(struct resolver *r)
{
    if (!r) {
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (r->started) {
        pthread_join(r->thread, NULL);
        r->started = false;
    }
    pthread_mutex_lock(&r->mu);
    struct miss_waiter *w = misscache_drain(r->cache);
    pthread_mutex_unlock(&r->mu);
    post_all(w, MK_EUNAVAIL);
}

void resolver_free(struct resolver *r)
{
    if (!r) {
        return;
    }
    resolver_stop(r);
    misscache_free(r->cache);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* ---- workers ----------------------------------------------------------- */

/* True if key is in memory now. A worker misses memory, then submits: a
 * read of the same key can put the row in memory and forget its pending
 * entry in between (a preempted worker, a loaded machine), and the submit
 * would queue a second read of a row already there. Asked under r->mu, so
 * such a read is either still pending (the submit joins it) or its row is
 * visible here. */
static bool in_memory(struct resolver *r, const struct miss_key *k)
{
    if (k->kind == MISS_PASSKEY) {
        struct user_info u;
        return users_find(r->users, (const char *)k->bytes, k->len, &u);
    }
    struct torrent_shard *shard;
    bool found = torrents_lock(r->torrents, k->bytes, &shard) != NULL;
    torrents_unlock(shard);
    return found;
}

int resolver_submit(struct resolver *r, struct resolver_inbox *inbox, const struct miss_key *key,
                    void *cookie, struct resolver_ticket **out)
{
    struct resolver_ticket *t = calloc(1, sizeof(*t));
    if (!t) {
        return MK_ENOMEM;
    }
    t->inbox = inbox;
    t->cookie = cookie;
    t->kind = key->kind;
    pthread_mutex_lock(&r->mu);
    bool found = !r->stopping && in_memory(r, key);
    enum miss_verdict v = MISS_JOINED;
    if (!found) {
        v = r->stopping ? MISS_FULL : misscache_submit(r->cache, key, mono_ms(), &t->link);
    }
    if (v == MISS_QUEUED) {
        pthread_cond_signal(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    if (found) {
        /* Answered as the read that put it there answered its own waiters. */
        count(r, key->kind, RESOLVE_COALESCED);
        t->result = MK_OK;
        inbox_post(inbox, t);
        *out = t;
        return MK_OK;
    }
    switch (v) {
    case MISS_QUEUED:
        *out = t;
        return MK_OK;
    case MISS_JOINED:
        count(r, key->kind, RESOLVE_COALESCED);
        *out = t;
        return MK_OK;
    case MISS_NEGATIVE:
        count(r, key->kind, RESOLVE_CACHED_NEGATIVE);
        free(t);
        return MK_ENOTFOUND;
    case MISS_FULL:
        break;
    }
    count(r, key->kind, RESOLVE_QUEUE_FULL);
    free(t);
    return MK_ELIMIT;
}

void resolver_stats_read(const struct resolver *r, struct resolver_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!r) {
        return;
    }
    for (unsigned k = 0; k < MISS_KINDS; k++) {
        for (unsigned o = 0; o < RESOLVE_OUTCOMES; o++) {
            out->lookups[k][o] = atomic_load_explicit(&r->lookups[k][o], memory_order_relaxed);
        }
    }
    for (unsigned i = 0; i <= RESOLVE_LATENCY_BUCKETS; i++) {
        out->latency[i] = atomic_load_explicit(&r->latency[i], memory_order_relaxed);
    }
    out->latency_ns_sum = atomic_load_explicit(&r->latency_ns_sum, memory_order_relaxed);
    out->reads = atomic_load_explicit(&r->reads, memory_order_relaxed);
}

const char *resolver_outcome_label(unsigned i)
{
    return i < RESOLVE_OUTCOMES ? outcome_labels[i] : "unknown";
}

const char *resolver_kind_label(unsigned kind)
{
    return kind == MISS_PASSKEY ? "passkey" : kind == MISS_INFO_HASH ? "info_hash" : "unknown";
}

double resolver_latency_bound(unsigned i)
{
    return i < RESOLVE_LATENCY_BUCKETS ? latency_bounds[i] : 0;
}
