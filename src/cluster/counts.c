/* cluster/counts.c: the counts thread (cluster/counts.h).
 *
 * Owns: the publishing round (changed swarms only, all of them after a
 * failed round or at start, when the node's old rows are reset) and the
 * reading round (per info_hash, the other nodes' row with the latest
 * announced_at, never a sum: a swarm lives on one node, and a node it left
 * keeps its expiring peers; snatches the largest of them all), put on the
 * torrents with a fresh stamp; torrents not in this round are zeroed.
 * Invariants: nothing here runs on a worker; the torrents are touched one
 * shard lock at a time, for O(1) each. Buffers grow with the number of
 * swarms that changed (publish) or that other nodes hold (read), up to
 * COUNTS_ROWS_MAX each.
 */
#include "cluster/counts.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"

#define COUNTS_ROWS_MAX (1u << 24)
#define COUNTS_TICK_MS 100 /* how often the thread looks at the stop flag */

struct counts_buf {
    struct swarm_count_row *rows;
    size_t n, cap;
    bool full;
};

struct counts {
    uint16_t node_id;
    uint32_t period_s;
    struct torrents *torrents;
    struct store st;
    pthread_t thread;
    bool running;
    _Atomic bool stopping;
    bool publish_all;   /* the next round publishes every swarm */
    bool reset;         /* the next publish first removes this node's old rows */
    uint32_t stamp;
    struct counts_buf out, in;
};

static bool counts_push(struct counts_buf *b, const struct swarm_count_row *row)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        if (cap > COUNTS_ROWS_MAX) {
            b->full = true;
            return false;
        }
        struct swarm_count_row *r = realloc(b->rows, cap * sizeof(*r));
        if (!r) {
            b->full = true;
            return false;
        }
        b->rows = r;
        b->cap = cap;
    }
    b->rows[b->n++] = *row;
    return true;
}

static void counts_changed(const struct swarm_count_row *row, void *arg)
{
    counts_push(arg, row);
}

static int counts_take(const struct swarm_count_row *row, void *arg)
{
    return counts_push(arg, row) ? 0 : MK_ELIMIT;
}

static int counts_cmp(const void *x, const void *y)
{
    const struct swarm_count_row *a = x, *b = y;
    return memcmp(a->info_hash, b->info_hash, 20);
}

static void counts_publish(struct counts *c)
{
    c->out.n = 0;
    c->out.full = false;
    torrents_counts_changed(c->torrents, c->publish_all, counts_changed, &c->out);
    struct mk_errbuf eb = {{0}};
    int rc = c->out.full ? mk_fail(&eb, MK_ELIMIT, "too many swarms changed")
                         : store_counts_put(&c->st, c->node_id, c->reset, c->out.rows, c->out.n,
                                            3 * c->period_s, &eb);
    /* What failed to go out was still remembered as published: send every
     * swarm next time rather than keep the others wrong. */
    c->publish_all = rc != 0;
    if (rc == 0) {
        c->reset = false;
    } else {
        mk_log(MK_LOG_WARN, "cluster", "swarm counts not published: %s", eb.msg);
    }
}

static void counts_read(struct counts *c)
{
    c->in.n = 0;
    c->in.full = false;
    struct mk_errbuf eb = {{0}};
    int rc = store_counts_load(&c->st, c->node_id, 3 * c->period_s, counts_take, &c->in, &eb);
    if (rc != 0) {
        /* Keep the last counts: a store hiccup must not empty scrapes. */
        mk_log(MK_LOG_WARN, "cluster", "other nodes' swarm counts not read: %s", eb.msg);
        return;
    }
    if (c->in.n > 1) {
        qsort(c->in.rows, c->in.n, sizeof(*c->in.rows), counts_cmp);
    }
    if (++c->stamp == 0) {
        c->stamp = 1; /* 0 is a new torrent's: never current */
    }
    for (size_t i = 0; i < c->in.n;) {
        /* The freshest row answers; on a tie (the same second), the one
         * with more peers, so the answer does not depend on the order. */
        const struct swarm_count_row *best = &c->in.rows[i];
        uint32_t snatches = best->snatches;
        size_t j = i + 1;
        for (; j < c->in.n && memcmp(c->in.rows[j].info_hash, best->info_hash, 20) == 0; j++) {
            const struct swarm_count_row *r = &c->in.rows[j];
            if (r->announced_at > best->announced_at ||
                (r->announced_at == best->announced_at &&
                 (uint64_t)r->seeders + r->leechers > (uint64_t)best->seeders + best->leechers)) {
                best = r;
            }
            if (r->snatches > snatches) {
                snatches = r->snatches;
            }
        }
        torrents_set_remote(c->torrents, best->info_hash, best->seeders, best->leechers, snatches,
                            best->announced_at, c->stamp);
        i = j;
    }
    torrents_clear_remote(c->torrents, c->stamp);
}

static void *counts_main(void *arg)
{
    struct counts *c = arg;
    int64_t waited_ms = (int64_t)c->period_s * 1000; /* the first round at once */
    while (!atomic_load(&c->stopping)) {
        if (waited_ms >= (int64_t)c->period_s * 1000) {
            waited_ms = 0;
            counts_publish(c);
            counts_read(c);
        }
        struct timespec ts = {0, COUNTS_TICK_MS * 1000000L};
        nanosleep(&ts, NULL);
        waited_ms += COUNTS_TICK_MS;
    }
    return NULL;
}

int counts_new(struct counts **out, uint16_t node_id, uint32_t period_s,
               const struct store_place *places, struct torrents *torrents,
               struct mk_errbuf *eb)
{
    *out = NULL;
    struct counts *c = calloc(1, sizeof(*c));
    if (!c) {
        return mk_fail(eb, MK_ENOMEM, "out of memory");
    }
    c->node_id = node_id;
    c->period_s = period_s ? period_s : 1;
    c->torrents = torrents;
    c->publish_all = true;
    c->reset = true; /* rows of this node's previous life are not this life's */
    const struct store_place *u = &places[0];
    struct store_cfg scfg = {.path = u->path, .dsn = u->dsn, .kinds = STORE_KIND_USERS};
    int rc = store_open(&c->st, u->backend, &scfg, eb);
    if (rc != 0) {
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int counts_start(struct counts *c, struct mk_errbuf *eb)
{
    if (pthread_create(&c->thread, NULL, counts_main, c) != 0) {
        return mk_fail(eb, MK_ENOMEM, "cannot start the cluster counts thread");
    }
    c->running = true;
    return 0;
}

void counts_free(struct counts *c)
{
    if (!c) {
        return;
    }
    atomic_store(&c->stopping, true);
    if (c->running) {
        pthread_join(c->thread, NULL);
    }
    store_close(&c->st);
    free(c->out.rows);
    free(c->in.rows);
    free(c);
}
