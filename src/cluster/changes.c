/* cluster/changes.c: publishing and hearing change notices (changes.h).
 *
 * Owns: the publishing connection (behind a mutex: API threads share it),
 * the listener thread and its connection, the reconnect back-off, and
 * dropping this node's own notices.
 * Not here: applying a notice (the apply callback), backends.
 * Invariant: the listener waits at most CHANGES_POLL_MS at a time, so
 * stopping never waits longer than that (plus a call in flight).
 */
#include "cluster/changes.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "util/log.h"

#define CHANGES_POLL_MS 200
#define CHANGES_BACKOFF_MIN_MS 100
#define CHANGES_BACKOFF_MAX_MS 5000

struct changes {
    struct changes_cfg cfg;
    struct store pub;           /* with pub_mu held */
    pthread_mutex_t pub_mu;
    struct store listen;        /* the listener thread's alone */
    pthread_t thread;
    bool running;
    _Atomic bool stopping;
    bool subscribed_once;       /* a later subscription is a reconnect */
    bool caller_loads;          /* the first subscription is followed by the caller's load */
    bool lost;                  /* the connection was lost since the last subscription */
    struct cluster_stats stats;
};

int changes_new(struct changes **out, const struct changes_cfg *cfg, struct mk_errbuf *eb)
{
    *out = NULL;
    struct changes *c = calloc(1, sizeof(*c));
    if (!c) {
        return mk_fail(eb, MK_ENOMEM, "out of memory");
    }
    c->cfg = *cfg;
    pthread_mutex_init(&c->pub_mu, NULL);
    /* Only the users' place: that is the store every node shares. */
    const struct store_place *u = &cfg->places[0];
    struct store_cfg scfg = {.path = u->path, .dsn = u->dsn, .kinds = STORE_KIND_USERS};
    int rc = store_open(&c->pub, u->backend, &scfg, eb);
    if (rc == 0) {
        rc = store_open(&c->listen, u->backend, &scfg, eb);
    }
    if (rc == 0 && !store_can_notify(&c->pub)) {
        rc = mk_fail(eb, MK_ENOTSUP, "cluster.node_id: store \"%s\" cannot carry change notices",
                     u->backend);
    }
    if (rc != 0) {
        changes_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

struct cluster_stats *changes_stats(struct changes *c)
{
    return &c->stats;
}

uint16_t changes_node_id(const struct changes *c)
{
    return c->cfg.node_id;
}

int changes_publish(struct changes *c, enum change_kind kind, uint32_t id,
                    const uint8_t *info_hash)
{
    struct change ch = {.origin = c->cfg.node_id, .kind = kind, .id = id};
    if (info_hash) {
        for (int i = 0; i < 20; i++) {
            ch.info_hash[i] = info_hash[i];
        }
    }
    char payload[CHANGE_PAYLOAD_MAX];
    int rc = change_put(&ch, payload, sizeof(payload));
    if (rc < 0) {
        return rc;
    }
    struct mk_errbuf eb = {{0}};
    pthread_mutex_lock(&c->pub_mu);
    rc = store_publish_change(&c->pub, payload, &eb);
    if (rc == MK_EUNAVAIL) {
        /* The connection was idle long enough to be cut: one more try on
         * a fresh one before giving up. */
        rc = store_publish_change(&c->pub, payload, &eb);
    }
    pthread_mutex_unlock(&c->pub_mu);
    if (rc == 0) {
        atomic_fetch_add(&c->stats.published, 1);
    } else {
        mk_log(MK_LOG_WARN, "cluster", "change %s not published: %s", payload, eb.msg);
    }
    return rc;
}

/* One notice, or (payload NULL) a fresh subscription. */
static void changes_heard(const char *payload, size_t len, void *arg)
{
    struct changes *c = arg;
    if (!payload) {
        bool first = !c->subscribed_once;
        c->subscribed_once = true;
        c->lost = false;
        if (first && c->caller_loads) {
            return; /* changes_start's caller loads everything next */
        }
        if (!first) {
            atomic_fetch_add(&c->stats.reconnects, 1);
        }
        mk_log(MK_LOG_INFO, "cluster", "listening for changes%s; reloading what may have been"
                                       " missed", first ? "" : " again");
        c->cfg.reload(c->cfg.arg);
        return;
    }
    struct change ch;
    struct mk_errbuf eb = {{0}};
    if (change_parse(payload, len, &ch, &eb) != 0) {
        mk_log(MK_LOG_WARN, "cluster", "ignored a notice: %s", eb.msg);
        return;
    }
    if (ch.origin == c->cfg.node_id) {
        return; /* this node applied it before publishing */
    }
    if (c->cfg.apply(c->cfg.arg, &ch, &eb) != 0) {
        mk_log(MK_LOG_WARN, "cluster", "%s change from node %u not applied (%s); reloading",
               change_kind_name(ch.kind), ch.origin, eb.msg);
        c->cfg.reload(c->cfg.arg);
        return;
    }
    atomic_fetch_add(&c->stats.applied, 1);
}

static void changes_sleep_ms(struct changes *c, int ms)
{
    /* In slices, so stopping is not held up by a long back-off. */
    while (ms > 0 && !atomic_load(&c->stopping)) {
        int step = ms < CHANGES_POLL_MS ? ms : CHANGES_POLL_MS;
        struct timespec ts = {step / 1000, (long)(step % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

static void *changes_main(void *arg)
{
    struct changes *c = arg;
    int backoff = 0;
    while (!atomic_load(&c->stopping)) {
        struct mk_errbuf eb = {{0}};
        int rc = store_listen_changes(&c->listen, CHANGES_POLL_MS, changes_heard, c, &eb);
        if (rc == 0) {
            backoff = 0;
            continue;
        }
        if (!c->lost) {
            mk_log(MK_LOG_WARN, "cluster", "change listener lost its connection: %s", eb.msg);
            c->lost = true;
        }
        backoff = backoff == 0 ? CHANGES_BACKOFF_MIN_MS
                  : backoff * 2 > CHANGES_BACKOFF_MAX_MS ? CHANGES_BACKOFF_MAX_MS
                                                         : backoff * 2;
        changes_sleep_ms(c, backoff);
    }
    return NULL;
}

int changes_start(struct changes *c, struct mk_errbuf *eb)
{
    /* Subscribed before the caller loads, so nothing falls between its load
     * and the first notice. If this fails, the thread's first subscription
     * asks for a reload instead. */
    struct mk_errbuf leb = {{0}};
    c->caller_loads = true;
    if (store_listen_changes(&c->listen, 0, changes_heard, c, &leb) != 0) {
        mk_log(MK_LOG_WARN, "cluster", "change listener not subscribed yet: %s", leb.msg);
        c->lost = true;
    }
    c->caller_loads = false;
    if (pthread_create(&c->thread, NULL, changes_main, c) != 0) {
        return mk_fail(eb, MK_ENOMEM, "cannot start the cluster change listener");
    }
    c->running = true;
    return 0;
}

void changes_free(struct changes *c)
{
    if (!c) {
        return;
    }
    atomic_store(&c->stopping, true);
    if (c->running) {
        pthread_join(c->thread, NULL);
    }
    store_close(&c->listen);
    store_close(&c->pub);
    pthread_mutex_destroy(&c->pub_mu);
    free(c);
}
