/* acct/flusher.c: journal segments -> store, exactly once. See flusher.h.
 *
 * Invariant: a segment file is deleted only after the store answered that it
 * holds it (applied now, or MK_EEXIST: applied before a crash that came
 * between the commit and the delete).
 *
 * Groups: the closed segments waiting in one pass are applied together, up
 * to FLUSHER_GROUP_RECORDS records, in one transaction that records every
 * segment's id (store_apply_segments). Each announce touches a random users,
 * history and peers page; a page dirtied by many records of one transaction
 * is written (WAL frame, checkpoint) once, so the store's cost per record
 * falls as the group grows, and most when the flusher is behind. A store
 * without that method, or a group holding a segment applied before a crash,
 * is applied one segment per transaction, as before.
 */
#include "acct/flusher.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acct/journal.h"
#include "util/log.h"
#include "util/radix.h"

#define FLUSHER_SEGMENTS_PER_PASS 1024
/* Records read into one group (at least one segment's bound): under a
 * load of 50k announces/s, the apply delay's worth. A busy flusher's cost
 * per record keeps falling with the group: keep-alive load at 40-55k
 * announces/s (bench/flushcost), CPU per announce with groups of 65,536
 * 8.9 us (6.8 user, 2.1 system), of 262,144 5.7 (4.3, 1.4): more users
 * announce twice in one group, and each page of the peers and history
 * tables is written once for more of their rows. The buffers grow to the
 * group at hand (flusher_trim gives them back): a full group holds ~60 MB
 * of records, and up to twice its count in merged rows. */
#define FLUSHER_GROUP_RECORDS 262144
/* The thread puts a pass off while less than a group waits, for at most the
 * apply delay (journal.apply_delay_ms): the store's cost per record falls as
 * the group grows, because each announce dirties a random users, history
 * and peers page and a page dirtied by many records of one transaction is
 * written once. Replaying a fixed journal (100k users, 400k peers), CPU per
 * record: groups of ~2.7k records 60 us, of ~15k half that, of 65k half
 * again. Under a new-connection load of 2-4k announces/s (bench/flushcost
 * --close) the flusher cost 44.7 us per announce with a 1 s delay, 19.0
 * with 5 s. The books trail the answers by that delay;
 * what is answered is on disk either way, and a drain or a replay applies
 * everything at once. */
#define FLUSHER_DEFAULT_DELAY_MS 5000
#define FLUSHER_BACKOFF_MAX_MS 5000
#define FLUSHER_PRUNE_EVERY_S 60
/* Segment ids applied more than a day ago are forgotten, once an hour. */
#define FLUSHER_APPLIED_KEEP_S 86400
#define FLUSHER_APPLIED_PRUNE_EVERY_S 3600

struct flusher {
    struct store *store;
    char dir[1024];
    uint32_t period_ms;
    struct journal_segment *segs;
    struct store_segment_id *ids; /* the group's, FLUSHER_SEGMENTS_PER_PASS */
    size_t *at;                   /* where each of ids is in segs */
    struct acct_delta *rows;      /* the group's records; grown to need (flusher_trim) */
    size_t rows_cap, rows_used;   /* used: the most this pass needed */
    struct acct_delta *merged;    /* what flusher_merge made of them: books, snatches,
                                   * suspicions, peers; grown and trimmed alike */
    size_t merged_cap, merged_used;
    struct radix_item *order;     /* flusher_sort's keys: twice the rows it sorts */
    size_t order_cap, order_used;
    size_t max_records;           /* one segment's bound */
    size_t group_records;
    bool no_groups;               /* the store has no apply_segments */
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;                /* under lock */
    uint32_t peer_ttl_s;          /* 0: never prune */
    _Atomic uint64_t *backlog_sink; /* NULL: nobody asked */
    struct flusher_latency *latency_sink; /* NULL: nobody asked */
    int64_t pruned_at;            /* unix seconds of the last prune */
    int64_t applied_pruned_at;    /* ... of the last prune of applied segment ids */
    uint16_t node_id;             /* cluster node whose segment ids are ours; 0: all */
    uint32_t delay_ms;            /* longest a backlog smaller than a group waits */
    uint64_t waiting_since_ns;    /* thread: when the current backlog was first seen; 0: none */
    _Atomic uint64_t applied;     /* records */
};

static void deadline_after(struct timespec *ts, uint32_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int flusher_new(struct flusher **out, struct store *st, const char *dir, size_t max_records,
                uint32_t period_ms, struct mk_errbuf *eb)
{
    struct flusher *f = calloc(1, sizeof(*f));
    if (!f) {
        return mk_fail(eb, MK_ENOMEM, "flusher: out of memory");
    }
    /* At least a segment (one is read whole), at most what the store asks. */
    size_t group = FLUSHER_GROUP_RECORDS;
    uint32_t bound = store_max_group_records(st);
    if (bound != 0 && bound < group) {
        group = bound;
    }
    if (group < max_records) {
        group = max_records;
    }
    f->segs = calloc(FLUSHER_SEGMENTS_PER_PASS, sizeof(*f->segs));
    f->ids = calloc(FLUSHER_SEGMENTS_PER_PASS, sizeof(*f->ids));
    f->at = calloc(FLUSHER_SEGMENTS_PER_PASS, sizeof(*f->at));
    if (!f->segs || !f->ids || !f->at) {
        free(f->segs);
        free(f->ids);
        free(f->at);
        free(f);
        return mk_fail(eb, MK_ENOMEM, "flusher: out of memory");
    }
    f->store = st;
    snprintf(f->dir, sizeof(f->dir), "%s", dir);
    f->max_records = max_records;
    f->group_records = group;
    f->period_ms = period_ms ? period_ms : 1;
    f->delay_ms = FLUSHER_DEFAULT_DELAY_MS;
    pthread_mutex_init(&f->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->wake, &ca);
    pthread_condattr_destroy(&ca);
    *out = f;
    return MK_OK;
}

/* ---- merging a segment before it meets the store -------------------------
 * A segment holds one record per announce; the store needs one update per
 * user, one row per peer (its newest report) and the snatches. Merging first
 * and handing rows over in key order turns thousands of scattered updates
 * into a few in-order ones: the store's cost per announce was dominated by
 * touching a users page per record. */

static int by_peer_then_version(const void *a, const void *b)
{
    const struct acct_delta *x = a, *y = b;
    if (x->torrent_id != y->torrent_id) {
        return x->torrent_id < y->torrent_id ? -1 : 1;
    }
    if (x->user_id != y->user_id) {
        return x->user_id < y->user_id ? -1 : 1;
    }
    int c = memcmp(x->peer.peer_id, y->peer.peer_id, sizeof(x->peer.peer_id));
    if (c != 0) {
        return c;
    }
    return x->peer.version < y->peer.version ? -1 : x->peer.version > y->peer.version;
}

static bool same_peer(const struct acct_delta *x, const struct acct_delta *y)
{
    return x->torrent_id == y->torrent_id && x->user_id == y->user_id &&
           memcmp(x->peer.peer_id, y->peer.peer_id, sizeof(x->peer.peer_id)) == 0;
}

/* v (holding *cap elements of `size` bytes), grown to hold need, at least
 * doubling; NULL when out of memory (v is then still valid and unchanged).
 * *used keeps the largest need since the last trim. Even for none it holds
 * one: an empty segment still goes through the sort and the store, which
 * must not be handed a null pointer. */
static void *flusher_reserve(void *v, size_t size, size_t *cap, size_t *used, size_t need)
{
    if (need == 0) {
        need = 1;
    }
    if (need > *used) {
        *used = need;
    }
    if (need <= *cap) {
        return v;
    }
    size_t want = *cap * 2 > need ? *cap * 2 : need;
    void *grown = realloc(v, want * size);
    if (grown) {
        *cap = want;
    }
    return grown;
}

/* At the end of a pass, gives a buffer back to the system when the pass
 * needed less than a quarter of it (it grows by doubling, so the load has
 * at least halved): a full group holds ~170 MB that a quieter tracker has
 * no use for. Under steady load it is kept: freeing and faulting it in
 * again each pass cost 1.5-2 us per announce (page faults, and the same
 * again in user time) at 40-55k announces/s. */
static void *flusher_trim(void *v, size_t *cap, size_t *used)
{
    if (*used * 4 < *cap) {
        free(v);
        v = NULL;
        *cap = 0;
    }
    *used = 0;
    return v;
}

/* Sorts rows[0..n) stably by user and torrent, or (by_peer) by torrent,
 * user, peer id and version: a radix sort of the two ids, then, by_peer,
 * qsort within each run of equal ids (one user's reports on one torrent:
 * a few at most, save for a client that changes its peer id at every
 * announce). MK_ENOMEM. */
static int flusher_sort(struct flusher *f, struct acct_delta *rows, size_t n, bool by_peer)
{
    struct radix_item *v =
        flusher_reserve(f->order, sizeof(*v), &f->order_cap, &f->order_used, 2 * n);
    if (!v) {
        return MK_ENOMEM;
    }
    f->order = v;
    for (size_t i = 0; i < n; i++) {
        uint64_t user = rows[i].user_id, torrent = rows[i].torrent_id;
        v[i].key = by_peer ? torrent << 32 | user : user << 32 | torrent;
        v[i].idx = i;
    }
    radix_sort(v, v + n, n);
    struct acct_delta spare;
    radix_permute(rows, sizeof(*rows), v, n, &spare);
    for (size_t i = 0; by_peer && i < n;) {
        size_t j = i + 1;
        while (j < n && rows[j].torrent_id == rows[i].torrent_id &&
               rows[j].user_id == rows[i].user_id) {
            j++;
        }
        if (j - i > 1) {
            qsort(rows + i, j - i, sizeof(*rows), by_peer_then_version);
        }
        i = j;
    }
    return MK_OK;
}

/* The rows flusher_merge makes of rows[0..n), sorted by user and torrent:
 * one per user and torrent with books, one per snatch, suspicious upload
 * and peer report. */
static size_t flusher_merged_bound(const struct acct_delta *rows, size_t n)
{
    size_t m = 0;
    const struct acct_delta *last = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct acct_delta *d = &rows[i];
        if (acct_delta_has_books(d)) {
            if (!last || last->user_id != d->user_id || last->torrent_id != d->torrent_id) {
                m++;
            }
            last = d;
        }
        m += (size_t)d->snatch + (d->suspicious != 0) + (size_t)d->has_peer;
    }
    return m;
}

/* Merges f->rows[0..n) into f->merged (grown to fit); *out_n gets how many
 * rows it holds. MK_ENOMEM. */
static int flusher_merge(struct flusher *f, size_t n, size_t *out_n)
{
    /* Books: one row per user and torrent, summed. Records without credit
     * count raw. */
    if (flusher_sort(f, f->rows, n, false) != MK_OK) {
        return MK_ENOMEM;
    }
    struct acct_delta *out = flusher_reserve(f->merged, sizeof(*out), &f->merged_cap,
                                             &f->merged_used, flusher_merged_bound(f->rows, n));
    if (!out) {
        return MK_ENOMEM;
    }
    f->merged = out;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const struct acct_delta *d = &f->rows[i];
        uint64_t cu = d->has_credit ? d->credited_up : d->uploaded;
        uint64_t cd = d->has_credit ? d->credited_down : d->downloaded;
        if (!acct_delta_has_books(d)) {
            continue;
        }
        if (m == 0 || out[m - 1].user_id != d->user_id || out[m - 1].torrent_id != d->torrent_id) {
            memset(&out[m], 0, sizeof(out[m]));
            out[m].user_id = d->user_id;
            out[m].torrent_id = d->torrent_id;
            out[m].at = d->at;
            out[m].first_at = d->first_at ? d->first_at : d->at;
            out[m].has_credit = true;
            m++;
        }
        struct acct_delta *sum = &out[m - 1];
        sum->announces += d->announces;
        if (d->at > sum->at) {
            sum->at = d->at;
        }
        if (d->first_at && d->first_at < sum->first_at) {
            sum->first_at = d->first_at;
        }
        sum->uploaded += d->uploaded;
        sum->downloaded += d->downloaded;
        sum->credited_up += cu;
        sum->credited_down += cd;
        sum->seed_seconds += d->seed_seconds;
        sum->leech_seconds += d->leech_seconds;
        sum->bonus += d->bonus;
    }
    /* Snatches, as they are: the store keeps only the first per user. */
    for (size_t i = 0; i < n; i++) {
        const struct acct_delta *d = &f->rows[i];
        if (d->snatch) {
            out[m] = (struct acct_delta){.user_id = d->user_id, .torrent_id = d->torrent_id,
                                         .snatch = true, .at = d->at, .has_credit = true};
            m++;
        }
    }
    /* Suspicious uploads, each one an event the API lists. */
    for (size_t i = 0; i < n; i++) {
        const struct acct_delta *d = &f->rows[i];
        if (d->suspicious) {
            out[m] = (struct acct_delta){.user_id = d->user_id, .torrent_id = d->torrent_id,
                                         .at = d->at, .has_credit = true,
                                         .suspicious = d->suspicious,
                                         .suspicious_up = d->suspicious_up};
            m++;
        }
    }
    /* Peers: only each one's newest report. */
    size_t start = m;
    for (size_t i = 0; i < n; i++) {
        if (f->rows[i].has_peer) {
            /* Only the peer: its books are in the rows above. */
            out[m] = (struct acct_delta){.user_id = f->rows[i].user_id,
                                         .torrent_id = f->rows[i].torrent_id,
                                         .at = f->rows[i].at,
                                         .has_credit = true,
                                         .has_peer = true,
                                         .peer = f->rows[i].peer};
            m++;
        }
    }
    if (flusher_sort(f, out + start, m - start, true) != MK_OK) {
        return MK_ENOMEM;
    }
    size_t keep = start;
    for (size_t i = start; i < m; i++) {
        if (i + 1 < m && same_peer(&out[i], &out[i + 1])) {
            /* A newer report of the same peer follows. It keeps this one's
             * hint that the store has no row yet. */
            out[i + 1].peer.fresh = out[i + 1].peer.fresh || out[i].peer.fresh;
            continue;
        }
        out[keep++] = out[i];
    }
    *out_n = keep;
    return MK_OK;
}

static uint64_t flusher_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void flusher_count_latency(struct flusher *f, uint64_t ns)
{
    struct flusher_latency *h = f->latency_sink;
    if (!h) {
        return;
    }
    unsigned i = 0;
    while (i < FLUSHER_LATENCY_BUCKETS && (double)ns > flusher_latency_bound(i) * 1e9) {
        i++;
    }
    atomic_fetch_add_explicit(&h->count[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->ns_sum, ns, memory_order_relaxed);
}

static void flusher_remove(struct flusher *f, const struct journal_segment *seg)
{
    struct mk_errbuf eb = {{0}};
    if (journal_remove(f->dir, seg, &eb) != MK_OK) {
        mk_log(MK_LOG_ERROR, "flusher", "%s", eb.msg);
    }
}

/* Reads, applies and removes one segment in its own transaction. */
static int flusher_apply_one(struct flusher *f, const struct journal_segment *seg)
{
    struct mk_errbuf eb = {{0}};
    size_t n = 0, merged = 0;
    struct acct_delta *rows =
        flusher_reserve(f->rows, sizeof(*rows), &f->rows_cap, &f->rows_used, f->max_records);
    if (!rows) {
        mk_log(MK_LOG_ERROR, "flusher", "out of memory reading a segment");
        return MK_ENOMEM;
    }
    f->rows = rows;
    int rc = journal_read(f->dir, seg, f->rows, f->max_records, &n, &eb);
    if (rc != MK_OK) {
        /* A segment we cannot read whole would be applied in part and then
         * deleted: leave it for an operator instead. */
        mk_log(MK_LOG_ERROR, "flusher", "segment left on disk: %s", eb.msg);
        return MK_OK;
    }
    struct store_segment_id id = {seg->boot, seg->writer, seg->seq, n, 0};
    if (flusher_merge(f, n, &merged) != MK_OK) {
        mk_log(MK_LOG_ERROR, "flusher", "out of memory merging a segment");
        return MK_ENOMEM;
    }
    uint64_t t0 = flusher_now_ns();
    rc = store_apply_segment(f->store, &id, f->merged, merged, &eb);
    flusher_count_latency(f, flusher_now_ns() - t0);
    if (rc == MK_EEXIST) {
        mk_log(MK_LOG_INFO, "flusher", "segment %016llx-w%u-%llu was already applied",
               (unsigned long long)seg->boot, seg->writer, (unsigned long long)seg->seq);
    } else if (rc != MK_OK) {
        return rc;
    } else {
        atomic_fetch_add(&f->applied, n);
    }
    flusher_remove(f, seg);
    return MK_OK;
}

/* Reads segs[*next..nsegs) into f->rows until the group is full, recording
 * the ids of those read in f->ids (and their indexes in f->at); segments that
 * cannot be read whole are left on disk and skipped. *records gets the
 * group's records, *nids its segments and *next where the next group
 * starts. MK_ENOMEM when not even one segment found room. */
static int flusher_gather(struct flusher *f, size_t *next, size_t nsegs, size_t *nids,
                          size_t *records)
{
    size_t used = 0, k = 0, i = *next;
    for (; i < nsegs; i++) {
        const struct journal_segment *seg = &f->segs[i];
        size_t room = f->group_records - used;
        size_t max = room < f->max_records ? room : f->max_records;
        size_t n = 0;
        struct mk_errbuf eb = {{0}};
        struct acct_delta *rows =
            flusher_reserve(f->rows, sizeof(*rows), &f->rows_cap, &f->rows_used, used + max);
        if (!rows) {
            mk_log(MK_LOG_ERROR, "flusher", "out of memory: a group of %zu records", used);
            if (k == 0) {
                return MK_ENOMEM;
            }
            break; /* the group as read so far */
        }
        f->rows = rows;
        int rc = journal_read(f->dir, seg, f->rows + used, max, &n, &eb);
        if (rc == MK_ELIMIT && max < f->max_records && k > 0) {
            break; /* it may fit the next group */
        }
        if (rc != MK_OK) {
            mk_log(MK_LOG_ERROR, "flusher", "segment left on disk: %s", eb.msg);
            continue;
        }
        f->ids[k] = (struct store_segment_id){seg->boot, seg->writer, seg->seq, n, 0};
        f->at[k++] = i;
        used += n;
    }
    *next = i;
    *nids = k;
    *records = used;
    return MK_OK;
}

static int flusher_pass_groups(struct flusher *f)
{
    for (;;) {
        size_t nsegs = 0;
        struct mk_errbuf eb = {{0}};
        int listed = journal_list(f->dir, f->segs, FLUSHER_SEGMENTS_PER_PASS, &nsegs, &eb);
        if (listed != MK_OK && listed != MK_ELIMIT) {
            mk_log(MK_LOG_ERROR, "flusher", "%s", eb.msg);
            return listed;
        }
        for (size_t i = 0; i < nsegs;) {
            if (f->no_groups) {
                int rc = flusher_apply_one(f, &f->segs[i++]);
                if (rc != MK_OK) {
                    return rc;
                }
                continue;
            }
            size_t nids = 0, n = 0, merged = 0;
            int rc = flusher_gather(f, &i, nsegs, &nids, &n);
            if (rc != MK_OK) {
                return rc;
            }
            if (nids == 0) {
                continue;
            }
            rc = flusher_merge(f, n, &merged);
            if (rc != MK_OK) {
                mk_log(MK_LOG_ERROR, "flusher", "out of memory merging %zu records", n);
                return rc;
            }
            uint64_t t0 = flusher_now_ns();
            rc = store_apply_segments(f->store, f->ids, nids, f->merged, merged, &eb);
            flusher_count_latency(f, flusher_now_ns() - t0);
            if (rc == MK_OK) {
                atomic_fetch_add(&f->applied, n);
                for (size_t k = 0; k < nids; k++) {
                    flusher_remove(f, &f->segs[f->at[k]]);
                }
                continue;
            }
            if (rc == MK_ENOTSUP) {
                f->no_groups = true;
            } else if (rc != MK_EEXIST) {
                return rc;
            }
            /* One segment at a time: those applied before a crash answer
             * MK_EEXIST alone, the others are applied. */
            for (size_t k = 0; k < nids; k++) {
                rc = flusher_apply_one(f, &f->segs[f->at[k]]);
                if (rc != MK_OK) {
                    return rc;
                }
            }
        }
        if (listed != MK_ELIMIT) {
            return MK_OK;
        }
    }
}

int flusher_pass(struct flusher *f)
{
    int rc = flusher_pass_groups(f);
    f->rows = flusher_trim(f->rows, &f->rows_cap, &f->rows_used);
    f->merged = flusher_trim(f->merged, &f->merged_cap, &f->merged_used);
    f->order = flusher_trim(f->order, &f->order_cap, &f->order_used);
    return rc;
}

void flusher_set_backlog_sink(struct flusher *f, _Atomic uint64_t *sink)
{
    f->backlog_sink = sink;
}

/* 1 ms .. 10 s: a batch is one transaction of hundreds of rows; a store
 * that is locked or gone shows in the top buckets. */
static const double flusher_latency_bounds[FLUSHER_LATENCY_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 10};

double flusher_latency_bound(unsigned i)
{
    return i < FLUSHER_LATENCY_BUCKETS ? flusher_latency_bounds[i] : 0;
}

void flusher_set_latency_sink(struct flusher *f, struct flusher_latency *sink)
{
    f->latency_sink = sink;
}

static void flusher_report_backlog(struct flusher *f)
{
    if (f->backlog_sink) {
        atomic_store_explicit(f->backlog_sink, journal_backlog_bytes(f->dir),
                              memory_order_relaxed);
    }
}

void flusher_set_peer_ttl(struct flusher *f, uint32_t ttl_s)
{
    f->peer_ttl_s = ttl_s;
}

void flusher_set_node(struct flusher *f, uint16_t node_id)
{
    f->node_id = node_id;
}

/* The store's record of applied segment ids guards only segments still on
 * disk; a day after their commit their files are long gone, unless removing
 * one failed: then nothing is forgotten, and that is said. */
static void flusher_prune_applied(struct flusher *f, int64_t now)
{
    if (now - f->applied_pruned_at < FLUSHER_APPLIED_PRUNE_EVERY_S) {
        return;
    }
    f->applied_pruned_at = now;
    int64_t before = now - FLUSHER_APPLIED_KEEP_S;
    int64_t oldest = journal_oldest_closed(f->dir);
    if (oldest != 0 && oldest < before + FLUSHER_APPLIED_PRUNE_EVERY_S) {
        mk_log(MK_LOG_WARN, "flusher",
               "a journal segment in %s is over a day old: applied segment ids are kept", f->dir);
        return;
    }
    struct mk_errbuf eb = {{0}};
    int rc = store_prune_applied(f->store, before, f->node_id, &eb);
    if (rc != MK_OK && rc != MK_ENOTSUP) {
        f->applied_pruned_at = 0; /* the next pass tries again */
    }
}

/* Stored peers the tracker has expired are dead weight for the next start. */
static void flusher_prune(struct flusher *f)
{
    int64_t now = (int64_t)time(NULL);
    flusher_prune_applied(f, now);
    if (f->peer_ttl_s == 0 || now - f->pruned_at < FLUSHER_PRUNE_EVERY_S) {
        return;
    }
    struct mk_errbuf eb = {{0}};
    if (store_prune_peers(f->store, now - f->peer_ttl_s, &eb) == MK_OK) {
        f->pruned_at = now;
    }
}

void flusher_set_apply_delay(struct flusher *f, uint32_t delay_ms)
{
    f->delay_ms = delay_ms;
}

/* Whether the thread puts this backlog off: less than a group's records
 * wait, and they have waited less than the apply delay. */
static bool flusher_defer(struct flusher *f, uint64_t backlog)
{
    if (backlog == 0) {
        f->waiting_since_ns = 0;
        return false;
    }
    uint64_t now = flusher_now_ns();
    if (f->waiting_since_ns == 0) {
        f->waiting_since_ns = now;
    }
    return backlog < (uint64_t)f->group_records * sizeof(struct journal_record) &&
           now - f->waiting_since_ns < (uint64_t)f->delay_ms * 1000000u;
}

static void *flusher_main(void *arg)
{
    struct flusher *f = arg;
    uint32_t wait_ms = f->period_ms;
    pthread_mutex_lock(&f->lock);
    while (!f->stopping) {
        struct timespec ts;
        deadline_after(&ts, wait_ms);
        pthread_cond_timedwait(&f->wake, &f->lock, &ts);
        if (f->stopping) {
            break;
        }
        pthread_mutex_unlock(&f->lock);
        uint64_t backlog = journal_backlog_bytes(f->dir);
        if (wait_ms == f->period_ms && flusher_defer(f, backlog)) {
            if (f->backlog_sink) {
                atomic_store_explicit(f->backlog_sink, backlog, memory_order_relaxed);
            }
            pthread_mutex_lock(&f->lock);
            continue;
        }
        f->waiting_since_ns = 0;
        int rc = flusher_pass(f);
        flusher_report_backlog(f);
        if (rc == MK_OK) {
            flusher_prune(f);
            wait_ms = f->period_ms;
        } else {
            wait_ms = wait_ms * 2 > FLUSHER_BACKOFF_MAX_MS ? FLUSHER_BACKOFF_MAX_MS : wait_ms * 2;
            mk_log(MK_LOG_WARN, "flusher",
                   "store unavailable (%s); %llu journal bytes wait on disk, retry in %u ms",
                   mk_err_name(rc), (unsigned long long)journal_backlog_bytes(f->dir), wait_ms);
        }
        pthread_mutex_lock(&f->lock);
    }
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

int flusher_start(struct flusher *f, struct mk_errbuf *eb)
{
    int rc = pthread_create(&f->thread, NULL, flusher_main, f);
    if (rc != 0) {
        return mk_fail(eb, MK_EIO, "flusher: cannot start thread: errno %d", rc);
    }
    f->started = true;
    return MK_OK;
}

uint64_t flusher_applied_records(const struct flusher *f)
{
    return atomic_load(&f->applied);
}

void flusher_stop(struct flusher *f, uint32_t drain_ms)
{
    if (!f) {
        return;
    }
    if (f->started) {
        pthread_mutex_lock(&f->lock);
        f->stopping = true;
        pthread_cond_signal(&f->wake);
        pthread_mutex_unlock(&f->lock);
        pthread_join(f->thread, NULL);
    }
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    uint32_t backoff_ms = 10;
    while (flusher_pass(f) != MK_OK) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000L + (now.tv_nsec - start.tv_nsec) / 1000000L;
        if (elapsed >= (long)drain_ms) {
            /* Not lost: the segments stay on disk and the next start applies them. */
            mk_log(MK_LOG_WARN, "flusher", "store unavailable at shutdown: %llu journal bytes"
                   " left on disk for the next start", (unsigned long long)journal_backlog_bytes(f->dir));
            break;
        }
        struct timespec nap = {0, (long)backoff_ms * 1000000L};
        nanosleep(&nap, NULL);
        backoff_ms = backoff_ms * 2 > 500 ? 500 : backoff_ms * 2;
    }
    mk_log(MK_LOG_INFO, "flusher", "stopped after applying %llu records",
           (unsigned long long)atomic_load(&f->applied));
    pthread_cond_destroy(&f->wake);
    pthread_mutex_destroy(&f->lock);
    free(f->segs);
    free(f->ids);
    free(f->at);
    free(f->rows);
    free(f->merged);
    free(f->order);
    free(f);
}
