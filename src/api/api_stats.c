/* api/api_stats.c: /api/v1/stats, /metrics (Prometheus text) and /health.
 *
 * Owns: the once-a-second sampler of the tracker's counters (for the
 * per-second rates), the stats object, the Prometheus exposition and the
 * health answer.
 * Not here: counting (net/tracker_stats.c keeps per-worker counters), totals of
 * swarms (swarm/torrents.c).
 * Invariants: counters are read, never reset; a read costs O(torrents) for
 * the swarm totals and O(workers) for the counters, and holds no lock a
 * worker waits on for longer than one shard.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "cluster/changes.h"
#include "auth/resolver.h"
#include "swarm/torrents.h"
#include "util/log.h"

#define API_METRICS_MAX (64 * 1024)

static int64_t api_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

static int64_t api_uptime(const struct api *a)
{
    return api_mono_s() - (int64_t)a->started.tv_sec;
}

/* ---- sampler ------------------------------------------------------------------ */

static void api_sample_now(struct api *a)
{
    struct tracker_stats st;
    tracker_stats_read(a->tracker, &st);
    pthread_mutex_lock(&a->sample_mu);
    a->samples[a->next_sample] = (struct api_sample){api_mono_s(), st.announces, st.scrapes};
    a->next_sample = (a->next_sample + 1) % (API_RATE_WINDOW + 1);
    if (a->nsamples < API_RATE_WINDOW + 1) {
        a->nsamples++;
    }
    pthread_mutex_unlock(&a->sample_mu);
}

static void *api_sampler_main(void *arg)
{
    struct api *a = arg;
    pthread_mutex_lock(&a->sample_mu);
    while (!a->stopping) {
        pthread_mutex_unlock(&a->sample_mu);
        api_sample_now(a);
        pthread_mutex_lock(&a->sample_mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        while (!a->stopping &&
               pthread_cond_timedwait(&a->sample_cv, &a->sample_mu, &until) == 0) {
        }
    }
    pthread_mutex_unlock(&a->sample_mu);
    return NULL;
}

int api_stats_start_sampler(struct api *a, struct mk_errbuf *eb)
{
    if (pthread_create(&a->sampler, NULL, api_sampler_main, a) != 0) {
        return mk_fail(eb, MK_EIO, "api: cannot start the stats sampler thread");
    }
    a->sampler_running = true;
    return 0;
}

void api_stats_stop_sampler(struct api *a)
{
    if (!a->sampler_running) {
        return;
    }
    pthread_mutex_lock(&a->sample_mu);
    a->stopping = true;
    pthread_cond_signal(&a->sample_cv);
    pthread_mutex_unlock(&a->sample_mu);
    pthread_join(a->sampler, NULL);
    a->sampler_running = false;
}

/* Rates over the oldest and newest samples, at most API_RATE_WINDOW apart. */
static void api_rates(struct api *a, double *announces, double *scrapes)
{
    *announces = *scrapes = 0;
    pthread_mutex_lock(&a->sample_mu);
    if (a->nsamples >= 2) {
        unsigned n = API_RATE_WINDOW + 1;
        unsigned newest = (a->next_sample + n - 1) % n;
        unsigned oldest = a->nsamples < n ? 0 : a->next_sample;
        const struct api_sample *x = &a->samples[oldest], *y = &a->samples[newest];
        if (y->at > x->at) {
            double dt = (double)(y->at - x->at);
            *announces = (double)(y->announces - x->announces) / dt;
            *scrapes = (double)(y->scrapes - x->scrapes) / dt;
        }
    }
    pthread_mutex_unlock(&a->sample_mu);
}

/* ---- totals --------------------------------------------------------------------- */

struct api_totals {
    uint64_t torrents, swarms;
    uint64_t seeders[2], leechers[2]; /* [0] IPv4, [1] IPv6 */
};

static void api_totals_add(const struct torrent *tor, void *arg)
{
    struct api_totals *t = arg;
    if (!tor->deleted) {
        t->torrents++;
    }
    if (peerset_count(&tor->v4) + peerset_count(&tor->v6) > 0) {
        t->swarms++;
    }
    t->seeders[0] += peerset_seeders(&tor->v4);
    t->seeders[1] += peerset_seeders(&tor->v6);
    t->leechers[0] += peerset_leechers(&tor->v4);
    t->leechers[1] += peerset_leechers(&tor->v6);
}

void api_stats_get(struct api *a, const struct api_req *r, struct api_resp *out)
{
    struct api_totals t = {0};
    torrents_each(a->tracker->torrents, api_totals_add, &t);
    struct tracker_stats st;
    tracker_stats_read(a->tracker, &st);
    double ann, scr;
    api_rates(a, &ann, &scr);
    uint64_t seeders = t.seeders[0] + t.seeders[1], leechers = t.leechers[0] + t.leechers[1];
    json_t *j = json_object();
    json_object_set_new(j, "users", json_integer((json_int_t)users_count(a->tracker->users)));
    json_object_set_new(j, "torrents", json_integer((json_int_t)t.torrents));
    json_object_set_new(j, "seeders", json_integer((json_int_t)seeders));
    json_object_set_new(j, "leechers", json_integer((json_int_t)leechers));
    json_object_set_new(j, "peers", json_integer((json_int_t)(seeders + leechers)));
    json_object_set_new(j, "swarms", json_integer((json_int_t)t.swarms));
    json_object_set_new(j, "announces_total", json_integer((json_int_t)st.announces));
    json_object_set_new(j, "scrapes_total", json_integer((json_int_t)st.scrapes));
    json_object_set_new(j, "announces_per_second", json_real(ann));
    json_object_set_new(j, "scrapes_per_second", json_real(scr));
    json_object_set_new(j, "uptime_seconds", json_integer(api_uptime(a)));
    api_ok(out, 200, j);
}

/* ---- /metrics ------------------------------------------------------------------- */

struct api_text {
    char *p;
    size_t len, cap;
    bool full;
};

static void api_text_add(struct api_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void api_text_add(struct api_text *t, const char *fmt, ...)
{
    if (t->full) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= t->cap - t->len) {
        t->full = true;
        return;
    }
    t->len += (size_t)n;
}

static void api_metric(struct api_text *t, const char *name, const char *type, const char *help,
                       uint64_t v)
{
    api_text_add(t, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type, name,
                 v);
}

/* The miss path (auth/resolver.h): lookups of keys not in memory by kind
 * and outcome, and how long their store reads took. */
/* A Prometheus histogram from per-bucket counts (counts[n] is past the last
 * bound) and the sum of the observations in nanoseconds. */
static void api_histogram(struct api_text *t, const char *name, const char *help,
                          const uint64_t *counts, unsigned n, double (*bound)(unsigned),
                          uint64_t ns_sum)
{
    api_text_add(t, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (unsigned i = 0; i < n; i++) {
        cum += counts[i];
        api_text_add(t, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, bound(i), cum);
    }
    cum += counts[n];
    api_text_add(t, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %.9f\n%s_count %" PRIu64 "\n",
                 name, cum, name, (double)ns_sum / 1e9, name, cum);
}

static void api_lookup_metrics(struct api_text *t, const struct resolver *res)
{
    struct resolver_stats rs;
    resolver_stats_read(res, &rs);
    api_text_add(t, "# HELP mika_lookups_total Passkeys and info_hashes not in memory, by"
                    " outcome (found, not_found: a store read; cached_negative, coalesced,"
                    " queue_full: none).\n# TYPE mika_lookups_total counter\n");
    for (unsigned k = 0; k < MISS_KINDS; k++) {
        for (unsigned o = 0; o < RESOLVE_OUTCOMES; o++) {
            api_text_add(t, "mika_lookups_total{kind=\"%s\",result=\"%s\"} %" PRIu64 "\n",
                         resolver_kind_label(k), resolver_outcome_label(o), rs.lookups[k][o]);
        }
    }
    api_histogram(t, "mika_lookup_store_seconds", "Time the store took to answer one lookup.",
                  rs.latency, RESOLVE_LATENCY_BUCKETS, resolver_latency_bound, rs.latency_ns_sum);
}

void api_stats_metrics(struct api *a, const struct api_req *r, struct api_resp *out)
{
    struct api_totals tot = {0};
    torrents_each(a->tracker->torrents, api_totals_add, &tot);
    struct tracker_stats st;
    tracker_stats_read(a->tracker, &st);
    struct api_text t = {.p = malloc(API_METRICS_MAX), .cap = API_METRICS_MAX};
    if (!t.p) {
        api_error(out, 500, "internal", "out of memory");
        return;
    }
    api_metric(&t, "mika_announces_total", "counter", "Announces answered.", st.announces);
    api_metric(&t, "mika_scrapes_total", "counter", "Scrapes answered.", st.scrapes);
    api_text_add(&t, "# HELP mika_announce_failures_total Requests refused, by reason.\n"
                     "# TYPE mika_announce_failures_total counter\n");
    for (unsigned i = 0; i < TRACKER_FAILURE_KINDS; i++) {
        api_text_add(&t, "mika_announce_failures_total{reason=\"%s\"} %" PRIu64 "\n",
                     tracker_failure_label(i), st.failures[i]);
    }
    api_histogram(&t, "mika_announce_duration_seconds", "Time to answer an announce.",
                  st.latency, TRACKER_LATENCY_BUCKETS, tracker_latency_bound, st.latency_ns_sum);
    const struct flusher_latency *fl = &a->tracker->store_latency;
    uint64_t batches[FLUSHER_LATENCY_BUCKETS + 1];
    for (unsigned i = 0; i <= FLUSHER_LATENCY_BUCKETS; i++) {
        batches[i] = atomic_load_explicit(&fl->count[i], memory_order_relaxed);
    }
    api_histogram(&t, "mika_store_batch_duration_seconds",
                  "Time the store took to apply one journal segment (one transaction).", batches,
                  FLUSHER_LATENCY_BUCKETS, flusher_latency_bound,
                  atomic_load_explicit(&fl->ns_sum, memory_order_relaxed));
    api_text_add(&t, "# HELP mika_peers Peers in the swarms now.\n# TYPE mika_peers gauge\n");
    static const char *const fam[2] = {"ipv4", "ipv6"};
    for (int f = 0; f < 2; f++) {
        api_text_add(&t, "mika_peers{family=\"%s\",state=\"seeder\"} %" PRIu64 "\n"
                         "mika_peers{family=\"%s\",state=\"leecher\"} %" PRIu64 "\n",
                     fam[f], tot.seeders[f], fam[f], tot.leechers[f]);
    }
    api_metric(&t, "mika_connections", "gauge", "Open connections on the tracker port.",
               st.conns_opened - st.conns_closed);
    api_metric(&t, "mika_connections_refused_total", "counter",
               "Connections closed at once because the connection cap was reached.",
               st.conns_refused);
    api_metric(&t, "mika_passkey_guess_blocks_total", "counter",
               "Times an address reached tracker.passkey_guess_limit unknown passkeys a minute.",
               st.guess_blocked);
    api_metric(&t, "mika_passkey_guess_refused_total", "counter",
               "Requests refused because their address was guessing passkeys.",
               st.guess_refused);
    api_lookup_metrics(&t, a->tracker->resolver);
    api_metric(&t, "mika_journal_backlog_bytes", "gauge",
               "Journal segments waiting for the store (grows while it is down).",
               atomic_load(&a->tracker->journal_backlog));
    api_metric(&t, "mika_swarms", "gauge", "Torrents with at least one peer.", tot.swarms);
    api_metric(&t, "mika_torrents", "gauge", "Registered torrents, not deleted.", tot.torrents);
    api_metric(&t, "mika_users", "gauge", "Users in memory.", users_count(a->tracker->users));
    api_metric(&t, "mika_api_requests_total", "counter", "Admin API requests.",
               atomic_load(&a->requests));
    if (a->changes) {
        struct cluster_stats *cs = changes_stats(a->changes);
        api_metric(&t, "mika_cluster_changes_published_total", "counter",
                   "Change notices this node sent to the other nodes.",
                   atomic_load(&cs->published));
        api_metric(&t, "mika_cluster_changes_applied_total", "counter",
                   "Other nodes' change notices applied here.", atomic_load(&cs->applied));
        api_metric(&t, "mika_cluster_listener_reconnects_total", "counter",
                   "Times the change listener subscribed again after losing its connection.",
                   atomic_load(&cs->reconnects));
    }
    api_metric(&t, "mika_uptime_seconds", "gauge", "Seconds since start.",
               (uint64_t)api_uptime(a));
    if (t.full) {
        free(t.p);
        api_error(out, 500, "internal", "metrics larger than %d bytes", API_METRICS_MAX);
        return;
    }
    out->status = 200;
    out->text = t.p;
}

/* ---- /health -------------------------------------------------------------------- */

void api_stats_health(struct api *a, const struct api_req *r, struct api_resp *out)
{
    struct mk_errbuf eb = {{0}};
    pthread_mutex_lock(&a->mu);
    int rc = store_ping(&a->store, &eb);
    pthread_mutex_unlock(&a->mu);
    json_t *j = json_object();
    json_object_set_new(j, "status", json_string(rc == 0 ? "ok" : "degraded"));
    json_object_set_new(j, "store", json_string(rc == 0 ? "ok" : eb.msg));
    json_object_set_new(j, "uptime_seconds", json_integer(api_uptime(a)));
    api_ok(out, rc == 0 ? 200 : 503, j);
}
