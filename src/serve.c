/* serve.c: `mika serve`: assembles the daemon and runs its main thread.
 *
 * Owns: start-up order (config, logging, store, in-memory state, flusher,
 * workers; in a cluster the change listener before the first load and the
 * counts thread after the API), the main thread's loop (signals: SIGHUP
 * reloads, SIGTERM and SIGINT stop; a reload the cluster listener asks for;
 * between them it reaps expired peers a few shards at a time), and
 * shutdown order (the cluster's threads, the API, the workers, then the
 * flusher drains, then the store closes).
 * Not here: answering requests (net/), the books (acct/), the cluster's
 * notices and counts (cluster/).
 */
#include "serve.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "acct/flusher.h"
#include "api/api.h"
#include "acct/journal.h"
#include "auth/resolver.h"
#include "auth/users.h"
#include "auth/whitelist.h"
#include "cluster/changes.h"
#include "cluster/counts.h"
#include "conf/config.h"
#include "net/server.h"
#include "net/tracker.h"
#include "store/store.h"
#include "swarm/torrents.h"
#include "util/log.h"
#include "util/notify.h"

extern char **environ;

#define FLUSH_PERIOD_MS 200
#define JOURNAL_SEGMENT_BYTES (1u << 20) /* ~7k records */
#define JOURNAL_SEGMENT_MS 200           /* the flusher sees a record this soon (it may wait for more) */
#define DRAIN_MS 10000           /* how long shutdown waits for a busy store */
#define REAP_TICK_MS 50          /* the main thread reaps a few shards this often */
#define WHITELIST_MAX 4096

struct daemon {
    struct mk_config cfg;
    struct store_place places[3]; /* users, torrents, peers: from cfg */
    struct store loader;         /* used by the main thread: start-up and SIGHUP */
    struct store books;          /* used by the flusher thread only */
    struct store lookups;        /* used by the resolver thread only */
    struct resolver *resolver;   /* reads passkeys and info_hashes that miss memory */
    struct users *users;
    struct torrents *torrents;
    struct whitelist *whitelist;
    struct tracker tracker;
    uint32_t nworkers;
    char journal_dir[4200];
    struct server_worker **workers;
    struct flusher *flusher;
    _Atomic uint32_t generation; /* the admin API reads it from its own threads */
    struct api *api;
    struct notify notify; /* systemd: READY, RELOADING, STOPPING, WATCHDOG */
    struct changes *changes;      /* cluster.node_id set: notices to and from other nodes */
    _Atomic(struct api *) api_live; /* api, once started: what the listener applies through */
    struct counts *counts;        /* cluster.node_id set: swarm counts for scrapes */
    _Atomic bool reload_wanted;   /* the listener missed notices: the main thread reloads */
};

void serve_usage(void)
{
    printf("usage: mika serve [--config FILE]\n"
           "\n"
           "Runs the tracker. Without --config it uses the built-in defaults: the\n"
           "HTTP tracker on port 34000 on every IPv4 and IPv6 address, users,\n"
           "torrents, the client whitelist, the books and peers' last reports in\n"
           "./mika.db (SQLite); [store.users], [store.torrents] and [store.peers]\n"
           "may each name another backend (docs/STORES.md).\n"
           "Any key can be set with MIKA_<SECTION>_<KEY>, e.g. MIKA_TRACKER_INTERVAL=900.\n"
           "Signals: SIGHUP reloads users, torrents and the whitelist from the store;\n"
           "SIGTERM and SIGINT stop after writing the books.\n"
           "\n"
           "Configuration keys (section.key = default), see docs/CONFIG.md:\n");
}

static void print_key(const char *section, const char *key, const char *def, const char *doc,
                      void *arg)
{
    (void)arg;
    printf("  %s.%s = %s\n      %s\n", section, key, def, doc);
}

/* ---- loading from the store -------------------------------------------- */

struct load_state {
    struct daemon *d;
    uint32_t users, torrents, snatches;
    struct whitelist_row *wl;
    size_t nwl;
    struct timespec started, last_line; /* for the progress lines */
    uint64_t rows;                      /* rows streamed so far, of any kind */
};

/* Rows between looks at the clock, and seconds between progress lines: a
 * start-up that streams millions of rows says how far it got, a small one
 * says nothing until it is done. */
#define LOAD_PROGRESS_ROWS 65536
#define LOAD_PROGRESS_SECONDS 2

static double load_seconds_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static void load_progress(struct load_state *ls)
{
    if (++ls->rows % LOAD_PROGRESS_ROWS != 0 ||
        load_seconds_since(&ls->last_line) < LOAD_PROGRESS_SECONDS) {
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &ls->last_line);
    mk_log(MK_LOG_INFO, "serve", "loading: %u users, %u torrents, %u snatches so far (%.1f s)",
           ls->users, ls->torrents, ls->snatches, load_seconds_since(&ls->started));
}

static int load_user(const struct user_row *row, void *arg)
{
    struct load_state *ls = arg;
    if (users_put(ls->d->users, row, ls->d->generation) == MK_OK) {
        ls->users++;
    }
    load_progress(ls);
    return MK_OK;
}

static int load_torrent(const struct torrent_row *row, void *arg)
{
    struct load_state *ls = arg;
    int rc = torrents_put(ls->d->torrents, row, ls->d->generation);
    if (rc == MK_OK) {
        ls->torrents++;
    }
    load_progress(ls);
    return rc == MK_ENOMEM ? rc : MK_OK;
}

static int load_whitelist(const struct whitelist_row *row, void *arg)
{
    struct load_state *ls = arg;
    if (ls->nwl == WHITELIST_MAX) {
        mk_log(MK_LOG_WARN, "serve", "whitelist: more than %d prefixes, ignoring the rest",
               WHITELIST_MAX);
        return MK_ELIMIT;
    }
    ls->wl[ls->nwl++] = *row;
    return MK_OK;
}

static int load_token(const struct token_row *row, void *arg)
{
    struct load_state *ls = arg;
    struct torrent_token tok = {row->user_id, row->up_mult, row->down_mult, row->expires};
    torrents_set_token(ls->d->torrents, row->info_hash, &tok);
    return MK_OK;
}

static int load_snatch(const struct snatch_row *row, void *arg)
{
    struct load_state *ls = arg;
    if (torrents_load_snatch(ls->d->torrents, row->info_hash, row->user_id) == MK_OK) {
        ls->snatches++;
    }
    load_progress(ls);
    return MK_OK;
}

/* Loads (or reloads) users, torrents, snatches and the whitelist. Rows the
 * store no longer has are swept afterwards, so a reload is also a delete. */
static int daemon_load(struct daemon *d, bool reload, struct mk_errbuf *eb)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct load_state ls = {.d = d, .started = t0, .last_line = t0};
    ls.wl = calloc(WHITELIST_MAX, sizeof(*ls.wl));
    if (!ls.wl) {
        return mk_fail(eb, MK_ENOMEM, "out of memory loading the whitelist");
    }
    d->generation++;
    int rc = store_load_users(&d->loader, load_user, &ls, eb);
    if (rc == MK_OK) {
        rc = store_load_torrents(&d->loader, load_torrent, &ls, eb);
    }
    if (rc == MK_OK) {
        rc = store_load_snatches(&d->loader, load_snatch, &ls, eb);
    }
    if (rc == MK_OK) {
        rc = store_load_tokens(&d->loader, 0, (int64_t)time(NULL), load_token, &ls, eb);
        if (rc == MK_ENOTSUP) {
            rc = MK_OK; /* a backend without tokens: nobody has one */
        }
    }
    if (rc == MK_OK) {
        rc = store_load_whitelist(&d->loader, load_whitelist, &ls, eb);
        if (rc == MK_ELIMIT) {
            rc = MK_OK;
        }
    }
    if (rc == MK_OK) {
        rc = whitelist_replace(d->whitelist, ls.wl, ls.nwl);
    }
    free(ls.wl);
    if (rc != MK_OK) {
        /* Keep what is in memory: a half-read store must not delete anyone. */
        return rc;
    }
    uint32_t gone_users = users_sweep(d->users, d->generation);
    uint32_t gone_torrents = torrents_sweep(d->torrents, d->generation);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000L + (t1.tv_nsec - t0.tv_nsec) / 1000000L;
    mk_log(MK_LOG_INFO, "serve", "%s: %u users, %u torrents, %zu whitelist prefixes, %u snatches in %ld ms"
           " (%u users and %u torrents removed)",
           reload ? "reloaded" : "loaded", ls.users, ls.torrents, ls.nwl, ls.snatches, ms,
           gone_users, gone_torrents);
    if (d->cfg.whitelist && ls.nwl == 0) {
        mk_log(MK_LOG_WARN, "serve", "the client whitelist is on and empty: every client will be"
                                     " refused (add prefixes, or set tracker.whitelist = false)");
    }
    return MK_OK;
}

struct restore_state {
    const struct tracker *tracker;
    int64_t now;
    uint64_t restored, skipped;
};

static int restore_peer(const struct peer_row *row, void *arg)
{
    struct restore_state *rs = arg;
    if (tracker_restore_peer(rs->tracker, row, rs->now) == MK_OK) {
        rs->restored++;
    } else {
        rs->skipped++;
    }
    return MK_OK;
}

/* Puts the peers the store remembers back into their swarms, so that the
 * first announce after a restart is credited its true delta. */
static void daemon_restore_peers(struct daemon *d)
{
    struct restore_state rs = {.tracker = &d->tracker, .now = (int64_t)time(NULL)};
    int64_t ttl = (int64_t)d->cfg.interval * d->cfg.expiry_factor;
    struct mk_errbuf eb = {{0}};
    if (store_load_peers(&d->loader, rs.now - ttl, restore_peer, &rs, &eb) != MK_OK) {
        mk_log(MK_LOG_WARN, "serve", "peers not restored: %s", eb.msg);
        return;
    }
    mk_log(MK_LOG_INFO, "serve", "restored %llu peers (%llu too old, on unknown torrents, or"
           " another node's)",
           (unsigned long long)rs.restored, (unsigned long long)rs.skipped);
}

/* ---- start and stop ---------------------------------------------------- */

static void raise_fd_limit(uint32_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want) {
        return;
    }
    rlim_t target = want < rl.rlim_max ? want : rl.rlim_max;
    rl.rlim_cur = target;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || target < want) {
        mk_log(MK_LOG_WARN, "serve", "open-file limit is %llu, below http.max_connections + 256 = %u",
               (unsigned long long)target, want);
    }
}

static void daemon_fini(struct daemon *d)
{
    /* Other nodes' changes first (they are applied through the API), then
     * the API: none of its changes may land on a half-stopped daemon. */
    changes_free(d->changes);
    d->changes = NULL;
    counts_free(d->counts);
    d->counts = NULL;
    api_stop(d->api);
    d->api = NULL;
    for (uint32_t i = 0; d->workers && i < d->nworkers; i++) {
        server_worker_stop(d->workers[i]);
    }
    /* After the workers (nobody submits any more), before their inboxes go:
     * lookups still waiting are answered into them. */
    resolver_stop(d->resolver);
    flusher_stop(d->flusher, DRAIN_MS);
    for (uint32_t i = 0; d->workers && i < d->nworkers; i++) {
        server_worker_free(d->workers[i]);
    }
    free(d->workers);
    resolver_free(d->resolver);
    d->resolver = NULL;
    tracker_fini(&d->tracker); /* nobody answers any more */
    torrents_free(d->torrents);
    users_free(d->users);
    whitelist_free(d->whitelist);
    store_close(&d->lookups);
    store_close(&d->books);
    store_close(&d->loader);
}

/* ---- a cluster's notices ------------------------------------------------- */

/* The listener thread's way in: through the API, which re-reads the row and
 * applies it as its own write would. Without the API, a reload does it. */
static int serve_apply_change(void *arg, const struct change *c, struct mk_errbuf *eb)
{
    struct daemon *d = arg;
    struct api *api = atomic_load(&d->api_live);
    if (api) {
        return api_apply_change(api, c, eb);
    }
    /* Still starting, or no API: the main thread reloads everything. */
    atomic_store(&d->reload_wanted, true);
    return 0;
}

static void serve_want_reload(void *arg)
{
    struct daemon *d = arg;
    atomic_store(&d->reload_wanted, true);
}

/* false when the store could not be read (the caller tries again later). */
static bool daemon_reload(struct daemon *d, const char *why)
{
    struct mk_errbuf eb = {{0}};
    mk_log(MK_LOG_INFO, "serve", "reloading: %s", why);
    if (daemon_load(d, true, &eb) != MK_OK) {
        mk_log(MK_LOG_ERROR, "serve", "reload failed, keeping the current state: %s", eb.msg);
        return false;
    }
    if (d->api && api_reload_settings(d->api, &eb) != MK_OK) {
        mk_log(MK_LOG_ERROR, "serve", "settings not reloaded: %s", eb.msg);
        return false;
    }
    return true;
}

static int daemon_start(struct daemon *d, struct mk_errbuf *eb)
{
    const struct mk_config *cfg = &d->cfg;
    raise_fd_limit(cfg->max_connections + 256);
    /* A scrape's hashes cost up to 71 bytes each ("info_hash=", 20 escaped
     * bytes, "&"), plus the path: a limit the request line cannot carry
     * would only show as 414 answers. */
    size_t scrape_line = 64 + (size_t)cfg->scrape_max_hashes * 71;
    if (scrape_line > cfg->max_request_line) {
        mk_log(MK_LOG_WARN, "serve", "tracker.scrape_max_hashes = %u needs a request line of about"
               " %zu bytes, above http.max_request_line = %u: such scrapes are refused with 414",
               cfg->scrape_max_hashes, scrape_line, cfg->max_request_line);
    }
    for (unsigned k = 0; k < 3; k++) {
        struct store_place *p = &d->places[k];
        config_store_kind(cfg, k, &p->backend, &p->path, &p->dsn);
    }
    int rc = store_open_kinds(&d->loader, d->places, eb);
    if (rc != MK_OK) {
        return rc;
    }
    rc = store_open_kinds(&d->books, d->places, eb);
    if (rc != MK_OK) {
        return rc;
    }
    rc = store_open_kinds(&d->lookups, d->places, eb);
    if (rc != MK_OK) {
        return rc;
    }
    d->users = users_new(0);
    d->torrents = torrents_new(0);
    d->whitelist = whitelist_new();
    if (!d->users || !d->torrents || !d->whitelist) {
        return mk_fail(eb, MK_ENOMEM, "out of memory");
    }
    /* The books first: segments a crash left behind are closed and applied
     * before anything is loaded (so snatch counts include them) and before
     * any new announce is answered. */
    if (cfg->journal_dir[0]) {
        snprintf(d->journal_dir, sizeof(d->journal_dir), "%s", cfg->journal_dir);
    } else {
        snprintf(d->journal_dir, sizeof(d->journal_dir), "%s.journal", cfg->db_path);
    }
    rc = journal_recover(d->journal_dir, eb);
    if (rc < 0) {
        return rc;
    }
    if (rc > 0) {
        mk_log(MK_LOG_WARN, "serve", "journal: closed %d segment(s) left open by a crash", rc);
    }
    rc = flusher_new(&d->flusher, &d->books, d->journal_dir,
                     JOURNAL_SEGMENT_BYTES / sizeof(struct journal_record) + 4096, FLUSH_PERIOD_MS, eb);
    if (rc != MK_OK) {
        return rc;
    }
    rc = flusher_pass(d->flusher);
    bool replayed = rc == MK_OK;
    if (rc != MK_OK) {
        /* Not fatal: the segments stay on disk and the flusher retries. */
        mk_log(MK_LOG_WARN, "serve", "journal replay postponed, the store is unavailable (%s)",
               mk_err_name(rc));
    } else if (flusher_applied_records(d->flusher) > 0) {
        mk_log(MK_LOG_INFO, "serve", "journal: replayed %llu records",
               (unsigned long long)flusher_applied_records(d->flusher));
    }
    /* A cluster's listener subscribes before the load, so that a change made
     * elsewhere meanwhile is either loaded or heard. */
    if (cfg->cluster_node_id != 0) {
        struct changes_cfg ccfg = {.node_id = (uint16_t)cfg->cluster_node_id,
                                   .places = d->places,
                                   .apply = serve_apply_change,
                                   .reload = serve_want_reload,
                                   .arg = d};
        rc = changes_new(&d->changes, &ccfg, eb);
        if (rc == MK_OK) {
            rc = changes_start(d->changes, eb);
        }
        if (rc != MK_OK) {
            return rc;
        }
    }
    rc = daemon_load(d, false, eb);
    if (rc != MK_OK) {
        return rc;
    }
    rc = tracker_init(&d->tracker, cfg, d->users, d->torrents, d->whitelist, eb);
    if (rc != MK_OK) {
        return rc;
    }
    /* Rows a site inserts straight into the database are found on their
     * first announce: the workers hand such misses to this thread. */
    struct resolver_cfg rcfg = {.queue_max = cfg->miss_queue,
                                .cache_max = cfg->miss_cache_size,
                                .negative_ttl_s = cfg->miss_cache_seconds};
    rc = resolver_new(&d->resolver, &rcfg, &d->lookups, d->users, d->torrents, &d->generation,
                      eb);
    if (rc != MK_OK) {
        return rc;
    }
    rc = resolver_start(d->resolver, eb);
    if (rc != MK_OK) {
        return rc;
    }
    d->tracker.resolver = d->resolver;
    /* Peers' baselines are only as fresh as the store: with segments still
     * waiting, the store's counters are older than what was answered, and
     * restoring them would credit the gap twice. */
    if (replayed) {
        daemon_restore_peers(d);
    } else {
        mk_log(MK_LOG_WARN, "serve", "peers not restored: the journal is not applied yet");
    }

    flusher_set_peer_ttl(d->flusher, cfg->interval * cfg->expiry_factor);
    flusher_set_apply_delay(d->flusher, cfg->journal_apply_delay_ms);
    flusher_set_node(d->flusher, (uint16_t)cfg->cluster_node_id);
    flusher_set_backlog_sink(d->flusher, &d->tracker.journal_backlog);
    flusher_set_latency_sink(d->flusher, &d->tracker.store_latency);
    if (!cfg->journal_enabled) {
        mk_log(MK_LOG_WARN, "serve", "journal.enabled = false: announces are answered but no"
                                     " books are kept (for benchmarks only)");
    }
    rc = flusher_start(d->flusher, eb);
    if (rc != MK_OK) {
        return rc;
    }
    uint64_t boot;
    if (getrandom(&boot, sizeof(boot), 0) != (ssize_t)sizeof(boot)) {
        return mk_fail(eb, MK_EIO, "getrandom failed");
    }
    /* Nodes of a cluster write segments into the same journal_applied
     * table: with its node id in the top 16 bits, a node's ids can never
     * meet another's, whatever the random low 48 bits draw. */
    boot = journal_boot_id(cfg->cluster_node_id, boot);
    struct server_journal_cfg jcfg = {
        .dir = d->journal_dir,
        .boot = boot,
        .seg_max_bytes = JOURNAL_SEGMENT_BYTES,
        .seg_max_ms = JOURNAL_SEGMENT_MS,
        .enabled = cfg->journal_enabled,
        .fsync = strcmp(cfg->journal_fsync, "always") == 0  ? JOURNAL_FSYNC_ALWAYS
                 : strcmp(cfg->journal_fsync, "never") == 0 ? JOURNAL_FSYNC_NEVER
                                                             : JOURNAL_FSYNC_INTERVAL,
        .fsync_interval_ms = cfg->journal_fsync_ms,
    };

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    d->nworkers = cfg->workers ? cfg->workers : (cores > 0 ? (uint32_t)cores : 1);
    d->workers = calloc(d->nworkers, sizeof(*d->workers));
    if (!d->workers) {
        return mk_fail(eb, MK_ENOMEM, "out of memory");
    }
    uint32_t share = (cfg->max_connections + d->nworkers - 1) / d->nworkers;
    for (uint32_t i = 0; i < d->nworkers; i++) {
        rc = server_worker_new(&d->workers[i], i, &d->tracker, &jcfg, share, eb);
        if (rc != MK_OK) {
            return rc;
        }
    }
    for (uint32_t i = 0; i < d->nworkers; i++) {
        rc = server_worker_start(d->workers[i], eb);
        if (rc != MK_OK) {
            return rc;
        }
    }
    /* The admin API after the workers, so its first change meets a running
     * tracker; a busy API port leaves the tracker serving without it. */
    struct api_deps adeps = {.cfg = cfg, .tracker = &d->tracker, .generation = &d->generation,
                             .places = d->places, .changes = d->changes};
    rc = api_start(&d->api, &adeps, eb);
    if (rc == MK_EUNAVAIL) {
        mk_log(MK_LOG_ERROR, "serve", "%s; serving the tracker without the admin API", eb->msg);
    } else if (rc != MK_OK) {
        return rc;
    }
    atomic_store(&d->api_live, d->api);
    if (d->changes) {
        rc = counts_new(&d->counts, (uint16_t)cfg->cluster_node_id, cfg->cluster_counts_seconds,
                        d->places, d->torrents, eb);
        if (rc == MK_OK) {
            rc = counts_start(d->counts, eb);
        }
        if (rc != MK_OK) {
            return rc;
        }
        mk_log(MK_LOG_INFO, "serve", "cluster node %u: sharing changes through the %s store",
               cfg->cluster_node_id, d->places[0].backend);
    }
    mk_log(MK_LOG_INFO, "serve", "listening on port %u (ipv4 %s, ipv6 %s), %u workers, loop %s",
           cfg->port, cfg->ipv4 ? cfg->bind4 : "off", cfg->ipv6 ? cfg->bind6 : "off",
           d->nworkers, server_worker_loop_name(d->workers[0]));
    return MK_OK;
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How often the whole table is swept: a peer leaves within 1/64 of its
 * time-to-live of expiring, and within 30 s whatever that is (timestamps
 * are whole seconds, so more than four sweeps a second buy nothing). A
 * sweep reads every peer (about 20 ns each): once a second, a million
 * peers kept 2% of a core busy with nothing expiring; with the default
 * one-hour time-to-live a sweep now runs every 30 s, and a peer silent for
 * an hour is handed out for at most 30 s more. */
static int64_t sweep_period_ms(const struct mk_config *cfg)
{
    int64_t ttl_ms = (int64_t)cfg->interval * cfg->expiry_factor * 1000;
    int64_t period = ttl_ms / 64;
    return period < 250 ? 250 : period > 30000 ? 30000 : period;
}

/* The main thread: signals, and between them reaping a few shards every
 * REAP_TICK_MS, so that no single pass holds up the workers. */
static void daemon_run(struct daemon *d, const sigset_t *signals)
{
    uint32_t nshards = torrents_nshards(d->torrents);
    int64_t sweep_ms = sweep_period_ms(&d->cfg);
    uint32_t per_tick = (uint32_t)((nshards * REAP_TICK_MS + sweep_ms - 1) / sweep_ms);
    uint32_t next_shard = 0;
    uint64_t reaped = 0;
    int64_t next_tick = monotonic_ms() + REAP_TICK_MS;
    int64_t reload_retry_at = 0;
    for (;;) {
        int64_t wait_ms = next_tick - monotonic_ms();
        if (wait_ms < 0) {
            wait_ms = 0;
        }
        struct timespec wait = {wait_ms / 1000, (wait_ms % 1000) * 1000000L};
        int sig = sigtimedwait(signals, NULL, &wait);
        if (sig == SIGTERM || sig == SIGINT) {
            mk_log(MK_LOG_INFO, "serve", "%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            atomic_store(&d->tracker.stopping, true);
            notify_stopping(&d->notify);
            return;
        }
        if (sig == SIGHUP) {
            struct mk_errbuf eb = {{0}};
            notify_reloading(&d->notify);
            if (daemon_load(d, true, &eb) != MK_OK) {
                mk_log(MK_LOG_ERROR, "serve", "reload failed, keeping the current state: %s", eb.msg);
            }
            notify_ready(&d->notify, NULL);
        } else if (sig < 0 && errno != EAGAIN && errno != EINTR) {
            mk_log(MK_LOG_ERROR, "serve", "sigtimedwait: %s", strerror(errno));
        }
        /* A failed reload is tried again a second later: a missed change
         * must not stay missed because the store blinked at the wrong time. */
        if (monotonic_ms() >= reload_retry_at && atomic_exchange(&d->reload_wanted, false) &&
            !daemon_reload(d, "the cluster listener may have missed changes")) {
            atomic_store(&d->reload_wanted, true);
            reload_retry_at = monotonic_ms() + 1000;
        }
        int64_t now = monotonic_ms();
        notify_tick(&d->notify, now);
        if (now < next_tick) {
            continue;
        }
        /* Signals do not delay reaping: a late tick runs now, once. */
        next_tick = now + REAP_TICK_MS;
        for (uint32_t i = 0; i < per_tick; i++) {
            reaped += tracker_reap_shard(&d->tracker, next_shard);
            next_shard = (next_shard + 1) % nshards;
        }
        if (next_shard < per_tick && reaped > 0) {
            mk_log(MK_LOG_DEBUG, "serve", "expired %llu peers", (unsigned long long)reaped);
            reaped = 0;
        }
    }
}

int serve_main(int argc, char **argv)
{
    const char *config_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            serve_usage();
            config_each_key(print_key, NULL);
            return 0;
        }
        if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config_path = argv[i] + 9;
        } else {
            fprintf(stderr, "mika serve: unknown argument \"%s\" (see mika serve --help)\n", argv[i]);
            return 2;
        }
    }

    static struct daemon d; /* large (config paths); one per process, owned by this function */
    memset(&d, 0, sizeof(d));
    struct mk_errbuf eb = {{0}};
    config_defaults(&d.cfg);
    if (config_load(&d.cfg, config_path, environ, &eb) != MK_OK) {
        fprintf(stderr, "mika: %s\n", eb.msg);
        return 2;
    }
    mk_log_setup(d.cfg.log_level, d.cfg.log_format, 2);

    /* Signals are taken synchronously by the main thread only: block them
     * before any thread exists so every thread inherits the mask. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    notify_init(&d.notify);
    int rc = daemon_start(&d, &eb);
    if (rc != MK_OK) {
        mk_log(MK_LOG_ERROR, "serve", "cannot start: %s", eb.msg);
        daemon_fini(&d);
        return 1;
    }
    /* Only now: the stores are loaded, the journal replayed, the ports open. */
    notify_ready(&d.notify, NULL);
    daemon_run(&d, &signals);
    daemon_fini(&d);
    mk_log(MK_LOG_INFO, "serve", "stopped");
    return 0;
}
