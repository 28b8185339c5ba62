/* net/tracker_stats.c: the tracker's counters, for /metrics and stats.
 *
 * Owns: counting each answer into the worker's slot (its failure kind, an
 * announce's latency bucket), summing the slots, and the metric labels and
 * latency bounds.
 * Not here: which failure an answer is (tracker_http.c, tracker_udp.c),
 * exposing the numbers (api/).
 * Invariant: writers touch only their own slot with relaxed atomic adds;
 * readers only load. Nothing is ever reset.
 */
#include <string.h>

#include "net/tracker.h"
#include "net/tracker_int.h"

/* Metric labels, by enum tracker_failure; a refusal whose text is none of
 * tracker_failure_reasons (a bad parameter: the parser's message) is
 * bad_request. */
static const char *const failure_labels[TRACKER_FAILURE_KINDS] = {
    [FAIL_UNKNOWN_PASSKEY] = "unknown_passkey",
    [FAIL_ACCOUNT_DISABLED] = "account_disabled",
    [FAIL_NO_DOWNLOAD] = "download_not_allowed",
    [FAIL_UNREGISTERED] = "unregistered_torrent",
    [FAIL_TORRENT_DISABLED] = "torrent_disabled",
    [FAIL_CLIENT] = "client_not_whitelisted",
    [FAIL_FAMILY_V4] = "ipv4_disabled",
    [FAIL_FAMILY_V6] = "ipv6_disabled",
    [FAIL_SWARM_FULL] = "swarm_full",
    [FAIL_NOT_FOUND] = "not_found",
    [FAIL_BOOKS] = "books_unavailable",
    [FAIL_LOOKUP] = "lookup_unavailable",
    [FAIL_LOOKUP + 1] = "bad_request",
};

/* Announce latency buckets, seconds (Prometheus `le`). */
static const double latency_bounds[TRACKER_LATENCY_BUCKETS] = {
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
    0.001,   0.0025,   0.005,   0.01,   0.05,    0.25,
};

/* Counts one answer of either transport: its failure kind (or
 * TRACKER_FAILURE_KINDS), and an announce's latency from t0. */
void tracker_count_answer(struct tracker_local *l, unsigned kind, bool is_scrape,
                          const struct timespec *t0_p)
{
    struct tracker_counters *c = l->counters;
    struct timespec t0 = *t0_p, t1;
    if (!c) {
        return;
    }
    if (kind < TRACKER_FAILURE_KINDS) {
        atomic_fetch_add_explicit(&c->failures[kind], 1, memory_order_relaxed);
    }
    if (is_scrape) {
        atomic_fetch_add_explicit(&c->scrapes, 1, memory_order_relaxed);
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    uint64_t ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u + (uint64_t)t1.tv_nsec -
                  (uint64_t)t0.tv_nsec;
    unsigned bucket = 0;
    while (bucket < TRACKER_LATENCY_BUCKETS && (double)ns > latency_bounds[bucket] * 1e9) {
        bucket++;
    }
    atomic_fetch_add_explicit(&c->announces, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->latency[bucket], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->latency_ns_sum, ns, memory_order_relaxed);
}

void tracker_stats_read(const struct tracker *t, struct tracker_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned s = 0; t->counters && s < TRACKER_SLOTS; s++) {
        const struct tracker_counters *c = &t->counters[s];
        out->announces += atomic_load_explicit(&c->announces, memory_order_relaxed);
        out->scrapes += atomic_load_explicit(&c->scrapes, memory_order_relaxed);
        for (unsigned i = 0; i < TRACKER_FAILURE_KINDS; i++) {
            out->failures[i] += atomic_load_explicit(&c->failures[i], memory_order_relaxed);
        }
        for (unsigned i = 0; i <= TRACKER_LATENCY_BUCKETS; i++) {
            out->latency[i] += atomic_load_explicit(&c->latency[i], memory_order_relaxed);
        }
        out->latency_ns_sum += atomic_load_explicit(&c->latency_ns_sum, memory_order_relaxed);
        out->conns_opened += atomic_load_explicit(&c->conns_opened, memory_order_relaxed);
        out->conns_closed += atomic_load_explicit(&c->conns_closed, memory_order_relaxed);
        out->conns_refused += atomic_load_explicit(&c->conns_refused, memory_order_relaxed);
        out->guess_blocked += atomic_load_explicit(&c->guess_blocked, memory_order_relaxed);
        out->guess_refused += atomic_load_explicit(&c->guess_refused, memory_order_relaxed);
    }
}

const char *tracker_failure_label(unsigned i)
{
    return i < TRACKER_FAILURE_KINDS ? failure_labels[i] : "unknown";
}

double tracker_latency_bound(unsigned i)
{
    return i < TRACKER_LATENCY_BUCKETS ? latency_bounds[i] : 0;
}
