/* net/tracker.c: the tracker's state, and an announce from parsed request to
 * answer.
 *
 * Owns: starting and stopping the tracker (peer selection, keys, clock) and
 * the settings the admin API changes live; the order of the private-tracker
 * checks (passkey, parameters, whitelist, torrent, download rights: cheapest
 * and least revealing first), the failure-reason table and the reply
 * writers, the swarm update under one shard lock, and adding the accounting
 * delta to the worker's journal batch.
 * Not here: the HTTP routes, scrape and health (tracker_http.c), UDP
 * (tracker_udp.c), counters (tracker_stats.c), restoring and expiring peers
 * (tracker_restore.c); sockets and HTTP framing (server.c, conn.c), parsing
 * (proto/), the peer set and selection (swarm/), writing the books (acct/).
 * Invariant: never blocks; holds at most one shard lock at a time, for
 * O(numwant) work.
 */
#include "net/tracker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "acct/rules.h"
#include "net/tracker_int.h"
#include "proto/udp.h"
#include "util/log.h"
#include "util/siphash.h"

/* The words of each refusal; tracker_failure_kind_text reads them back for
 * the counters, so each must stay distinct. */
const char *const tracker_failure_reasons[FAIL_BAD_REQUEST] = {
    [FAIL_UNKNOWN_PASSKEY] = "unknown passkey",
    [FAIL_ACCOUNT_DISABLED] = "account disabled",
    [FAIL_NO_DOWNLOAD] = "downloading not allowed for this account",
    [FAIL_UNREGISTERED] = "unregistered torrent",
    [FAIL_TORRENT_DISABLED] = "torrent disabled",
    [FAIL_CLIENT] = "client not whitelisted",
    [FAIL_FAMILY_V4] = "IPv4 is not served by this tracker",
    [FAIL_FAMILY_V6] = "IPv6 is not served by this tracker",
    [FAIL_SWARM_FULL] = "swarm is full, try again later",
    [FAIL_NOT_FOUND] = "not found",
    [FAIL_BOOKS] = "tracker cannot record this announce now, try again later",
    /* The store could not be asked about a key not in memory (busy, down,
     * or too many lookups queued): nothing is known, so nothing is refused. */
    [FAIL_LOOKUP] = "tracker cannot look this up now, try again later",
};

/* The failure kind of a refusal's words: FAIL_BAD_REQUEST unless they are
 * one of tracker_failure_reasons. */
unsigned tracker_failure_kind_text(const char *text, size_t n)
{
    for (unsigned f = 0; f < FAIL_BAD_REQUEST; f++) {
        size_t flen = strlen(tracker_failure_reasons[f]);
        /* "unregistered torrent: <reason>" is an unregistered torrent too. */
        if (n >= flen && memcmp(text, tracker_failure_reasons[f], flen) == 0 &&
            (n == flen || (f == FAIL_UNREGISTERED && text[flen] == ':'))) {
            return f;
        }
    }
    return FAIL_BAD_REQUEST;
}

/* Appends n bytes written by a udp_put_* call; 0 means no room. */
void tracker_reply_udp_advance(struct bencode *b, size_t n)
{
    if (n == 0) {
        b->overflow = true;
    }
    b->len += n;
}

int tracker_reply_failure_msg(struct tracker_reply *rp, const char *msg)
{
    if (rp->udp) {
        struct bencode *b = rp->b;
        tracker_reply_udp_advance(b, udp_put_error(b->p + b->len, b->cap - b->len, rp->tid, msg));
    } else {
        bencode_failure(rp->b, msg);
    }
    return 200;
}

int tracker_reply_failure(struct tracker_reply *rp, enum tracker_failure f)
{
    return tracker_reply_failure_msg(rp, tracker_failure_reasons[f]);
}

/* Names the key a parked request waits for. */
static void park(struct tracker_local *l, enum miss_kind kind, const uint8_t *key, size_t len)
{
    l->miss.kind = (uint8_t)kind;
    l->miss.len = (uint8_t)len;
    memcpy(l->miss.bytes, key, len);
}

/* Opens the databases, then every strategy they allow; the configured one
 * must open, and its error is the one reported. */
static int tracker_open_selection(struct tracker *t, const struct mk_config *cfg,
                                  struct mk_errbuf *eb)
{
    int kind = select_kind_parse(cfg->peer_selection);
    if (kind <= SELECT_DEFAULT) {
        kind = SELECT_RANDOM;
    }
    t->selection = (enum select_kind)kind;
    if (cfg->geoip_city_db[0] || cfg->geoip_asn_db[0]) {
        int rc = geo_open(&t->geo, cfg->geoip_city_db, cfg->geoip_asn_db, eb);
        if (rc < 0) {
            return rc;
        }
    }
    struct select_env env = {.geo = t->geo};
    for (unsigned k = SELECT_DEFAULT + 1; k < SELECT_KINDS; k++) {
        const struct select_ops *ops = select_ops_of((enum select_kind)k);
        if (!ops) {
            continue;
        }
        struct mk_errbuf ignored;
        int rc = selector_open(&t->selectors[k], ops, &env, k == (unsigned)kind ? eb : &ignored);
        if (rc < 0 && k == (unsigned)kind) {
            tracker_fini(t);
            return rc;
        }
    }
    if (!selector_is_open(&t->selectors[kind])) {
        tracker_fini(t);
        return mk_fail(eb, MK_EINVAL, "tracker.peer_selection: %s is not available yet",
                       select_kind_name((enum select_kind)kind));
    }
    return MK_OK;
}

int tracker_init(struct tracker *t, const struct mk_config *cfg, struct users *users,
                 struct torrents *torrents, struct whitelist *whitelist, struct mk_errbuf *eb)
{
    memset(t, 0, sizeof(*t));
    t->cfg = cfg;
    t->users = users;
    t->torrents = torrents;
    t->whitelist = whitelist;
    if (getrandom(t->peer_key, sizeof(t->peer_key), 0) != (ssize_t)sizeof(t->peer_key)) {
        return mk_fail(eb, MK_EIO, "getrandom failed");
    }
    if (getrandom(t->udp_key, sizeof(t->udp_key), 0) != (ssize_t)sizeof(t->udp_key)) {
        return mk_fail(eb, MK_EIO, "getrandom failed");
    }
    clock_gettime(CLOCK_MONOTONIC, &t->epoch);
    /* The clock starts a time-to-live after zero, so peers restored from the
     * store keep their true age (their last_seen lies before the start). */
    t->epoch.tv_sec -= (time_t)cfg->interval * cfg->expiry_factor;
    atomic_init(&t->live.interval, cfg->interval);
    atomic_init(&t->live.min_interval, cfg->min_interval);
    atomic_init(&t->live.numwant_max, cfg->numwant_max);
    t->bonus = (struct acct_bonus_params){
        .points_per_hour = (uint64_t)cfg->bonus_points_per_hour * ACCT_POINT,
        .size_unit_bytes = (uint64_t)cfg->bonus_size_unit_mib << 20,
        .size_weight = cfg->bonus_size_weight,
        .size_units_max = cfg->bonus_size_units_max,
        .seeder_weight = cfg->bonus_seeder_weight,
    };
    atomic_init(&t->journal_backlog, 0);
    atomic_init(&t->stopping, false);
    atomic_init(&t->live.event_up, ACCT_MULT_ONE);
    atomic_init(&t->live.event_down, ACCT_MULT_ONE);
    atomic_init(&t->live.event_ends, 0);
    t->counters = t->slots;
    t->next_slot = &t->slot_seq;
    return tracker_open_selection(t, cfg, eb);
}

void tracker_fini(struct tracker *t)
{
    for (unsigned k = 0; k < SELECT_KINDS; k++) {
        selector_close(&t->selectors[k]);
    }
    geo_free(t->geo);
    t->geo = NULL;
}

const struct selector *tracker_selector(const struct tracker *t, enum select_kind override)
{
    if ((unsigned)override < SELECT_KINDS && override != SELECT_DEFAULT &&
        selector_is_open(&t->selectors[override])) {
        return &t->selectors[override];
    }
    return &t->selectors[t->selection];
}

void tracker_set_event(struct tracker *t, uint32_t up, uint32_t down, int64_t ends)
{
    /* Three separate stores: an announce racing this change may book one
     * request with the old factor on one side; the next is consistent. */
    atomic_store(&t->live.event_ends, ends);
    atomic_store(&t->live.event_up, up);
    atomic_store(&t->live.event_down, down);
}

int tracker_set_live(struct tracker *t, uint32_t interval, uint32_t min_interval,
                     uint32_t numwant_max, struct mk_errbuf *eb)
{
    uint32_t iv = interval ? interval : atomic_load(&t->live.interval);
    uint32_t miv = min_interval ? min_interval : atomic_load(&t->live.min_interval);
    uint32_t nw = numwant_max ? numwant_max : atomic_load(&t->live.numwant_max);
    if (iv > 86400) {
        return mk_fail(eb, MK_EINVAL, "interval: %u is above the maximum 86400", iv);
    }
    if (miv > iv) {
        return mk_fail(eb, MK_EINVAL, "min_interval: %u is above interval %u", miv, iv);
    }
    /* The answer buffers were sized for the configured cap at start-up. */
    if (nw > t->cfg->numwant_max) {
        return mk_fail(eb, MK_EINVAL, "numwant_max: %u is above the configured tracker.numwant_max %u",
                       nw, t->cfg->numwant_max);
    }
    atomic_store(&t->live.interval, iv);
    atomic_store(&t->live.min_interval, miv);
    atomic_store(&t->live.numwant_max, nw);
    return MK_OK;
}

int tracker_local_init(struct tracker_local *l, const struct tracker *t,
                       struct journal_writer *journal, uint64_t seed)
{
    memset(l, 0, sizeof(*l));
    rng_seed(&l->rng, seed);
    whitelist_view_init(&l->whitelist);
    l->journal = journal;
    for (unsigned k = 0; k < MISS_KINDS; k++) {
        l->lookup[k] = TRACKER_LOOKUP_NONE;
    }
    l->hashes = calloc(t->cfg->scrape_max_hashes, sizeof(*l->hashes));
    if (t->counters) {
        uint32_t slot = atomic_fetch_add_explicit(t->next_slot, 1, memory_order_relaxed);
        l->counters = &t->counters[slot % TRACKER_SLOTS];
    }
    return l->hashes ? MK_OK : MK_ENOMEM;
}

void tracker_local_fini(struct tracker_local *l)
{
    whitelist_view_fini(&l->whitelist);
    free(l->hashes);
    l->hashes = NULL;
}

uint32_t tracker_now(const struct tracker *t)
{
    if (t->frozen_now) {
        return t->frozen_now;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    /* +1 so that a peer seen in the first second is not "older than 0". */
    return (uint32_t)(ts.tv_sec - t->epoch.tv_sec) + 1;
}

/* "/<passkey>/<action>" -> views; false when the path has another shape. */
bool tracker_split_path(struct mk_str path, struct mk_str *passkey, struct mk_str *action)
{
    if (path.len < 2 || path.p[0] != '/') {
        return false;
    }
    const char *start = path.p + 1;
    const char *slash = memchr(start, '/', path.len - 1);
    if (!slash) {
        return false;
    }
    passkey->p = start;
    passkey->len = (size_t)(slash - start);
    action->p = slash + 1;
    action->len = path.len - (size_t)(action->p - path.p);
    return true;
}

static bool passkey_is_wellformed(struct mk_str pk)
{
    if (pk.len == 0 || pk.len > MK_PASSKEY_MAX) {
        return false;
    }
    for (size_t i = 0; i < pk.len; i++) {
        char c = pk.p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
            return false;
        }
    }
    return true;
}

/* BEP 7 ipv4=/ipv6=, when the operator allows them: they replace the
 * address of the same family only, so a client cannot move itself into the
 * other family's swarm. */
static void apply_ip_params(const struct announce_req *a, struct tracker_addr *addr)
{
    if (addr->family == AF_INET && a->has_ipv4) {
        memcpy(addr->ip, a->ipv4, 4);
    } else if (addr->family == AF_INET6 && a->has_ipv6) {
        memcpy(addr->ip, a->ipv6, 16);
    }
}

uint64_t tracker_peer_identity(const struct tracker *t, const uint8_t peer_id[20],
                               uint32_t user_id)
{
    uint8_t buf[24];
    memcpy(buf, peer_id, 20);
    memcpy(buf + 20, &user_id, 4);
    return siphash24(buf, sizeof(buf), t->peer_key);
}

/* The site-wide event's factors if one is in force at `now`, else 1.0x. */
static struct acct_mult event_mults(const struct tracker *t, int64_t now)
{
    int64_t ends = atomic_load_explicit(&t->live.event_ends, memory_order_relaxed);
    if (ends != 0 && now >= ends) {
        return (struct acct_mult){ACCT_MULT_ONE, ACCT_MULT_ONE};
    }
    return (struct acct_mult){atomic_load_explicit(&t->live.event_up, memory_order_relaxed),
                              atomic_load_explicit(&t->live.event_down, memory_order_relaxed)};
}

/* Adds the delta to this turn's journal batch; a full batch is written out
 * first. False only when the journal cannot be written. */
static bool journal_delta(struct tracker_local *l, const struct acct_delta *delta)
{
    if (!l->journal) {
        return true; /* journal.enabled = false: no books are kept */
    }
    if (journal_add(l->journal, delta) == MK_OK) {
        return true;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return journal_commit(l->journal, now_ms) == MK_OK && journal_add(l->journal, delta) == MK_OK;
}

static void put_counts(struct bencode *b, const struct torrent *tor)
{
    bencode_cstr(b, "complete");
    bencode_int(b, (int64_t)peerset_seeders(&tor->v4) + peerset_seeders(&tor->v6));
    bencode_cstr(b, "downloaded");
    bencode_int(b, tor->snatches);
}

/* UDP: the announce answer's fixed part (BEP 15 has no min interval and
 * no snatch count), and where its peers go; NULL when b has no room. */
static uint8_t *reply_udp_announce(struct tracker_reply *rp, const struct tracker *t,
                                   const struct torrent *tor, uint32_t leechers,
                                   size_t peer_bytes)
{
    struct bencode *b = rp->b;
    uint32_t seeders = peerset_seeders(&tor->v4) + peerset_seeders(&tor->v6);
    size_t n = udp_put_announce_head(b->p + b->len, b->cap - b->len, rp->tid,
                                     atomic_load_explicit(&t->live.interval, memory_order_relaxed),
                                     leechers, seeders);
    tracker_reply_udp_advance(b, n);
    if (n == 0 || peer_bytes > b->cap - b->len) {
        b->overflow = true;
        return NULL;
    }
    uint8_t *out = b->p + b->len;
    b->len += peer_bytes;
    return out;
}

/* An announce however it came: a is parsed, addr is the client's address
 * (the source, or what a trusted proxy saw). Both transports run this. */
int tracker_announce(const struct tracker *t, struct tracker_local *l,
                     const struct user_info *user, struct announce_req a,
                     struct tracker_addr addr, struct tracker_reply *rp)
{
    const struct mk_config *cfg = t->cfg;
    struct bencode *b = rp->b;
    if (cfg->whitelist) {
        whitelist_view_refresh(&l->whitelist, t->whitelist);
        if (!whitelist_match(&l->whitelist, a.peer_id)) {
            return tracker_reply_failure(rp, FAIL_CLIENT);
        }
    }
    if (cfg->allow_ip_param) {
        apply_ip_params(&a, &addr);
    }
    if (addr.family == AF_INET && !cfg->ipv4) {
        return tracker_reply_failure(rp, FAIL_FAMILY_V4);
    }
    /* The store has been away so long that the journal reached its bound:
     * refuse rather than answer what could not be booked. */
    if (atomic_load_explicit(&t->journal_backlog, memory_order_relaxed) >
        (uint64_t)cfg->journal_max_mib << 20) {
        return tracker_reply_failure(rp, FAIL_BOOKS);
    }
    if (addr.family == AF_INET6 && !cfg->ipv6) {
        return tracker_reply_failure(rp, FAIL_FAMILY_V6);
    }
    bool v6 = addr.family == AF_INET6;

    struct peer_report r = {
        .key = tracker_peer_identity(t, a.peer_id, user->id),
        .user_id = user->id,
        .uploaded = a.uploaded,
        .downloaded = a.downloaded,
        .seeder = a.left == 0,
        .partial = a.left > 0 && a.event == EVENT_PAUSED,
        .now = tracker_now(t),
        .locate = geo_has_location(t->geo) ? geo_locate : NULL,
        .locate_net = geo_has_asn(t->geo) ? geo_locate_net : NULL,
        .locate_arg = t->geo,
    };
    size_t iplen = v6 ? 16 : 4;
    memcpy(r.addr, addr.ip, iplen);
    r.addr[iplen] = (uint8_t)(a.port >> 8);
    r.addr[iplen + 1] = (uint8_t)(a.port & 0xff);
    uint32_t numwant_max = atomic_load_explicit(&t->live.numwant_max, memory_order_relaxed);
    uint32_t numwant = a.has_numwant ? a.numwant : cfg->numwant_default;
    if (numwant > numwant_max) {
        numwant = numwant_max;
    }

    struct acct_delta delta = {.user_id = user->id, .at = (int64_t)time(NULL)};
    struct peer_prev prev = {0};
    struct torrent_shard *shard;
    struct torrent *tor = torrents_lock(t->torrents, a.info_hash, &shard);
    if (!tor && t->resolver) {
        torrents_unlock(shard);
        int looked = l->lookup[MISS_INFO_HASH];
        if (looked == TRACKER_LOOKUP_NONE) {
            park(l, MISS_INFO_HASH, a.info_hash, 20);
            return TRACKER_PARKED;
        }
        return tracker_reply_failure(rp, looked == MK_OK || looked == MK_ENOTFOUND
                                             ? FAIL_UNREGISTERED
                                             : FAIL_LOOKUP);
    }
    if (!tor || tor->deleted) {
        if (tor && tor->reason) {
            char msg[MK_REASON_MAX + 32];
            snprintf(msg, sizeof(msg), "%s: %s", tracker_failure_reasons[FAIL_UNREGISTERED],
                     tor->reason);
            torrents_unlock(shard);
            return tracker_reply_failure_msg(rp, msg);
        }
        torrents_unlock(shard);
        return tracker_reply_failure(rp, FAIL_UNREGISTERED);
    }
    /* A peer may always leave: refusing its `stopped` would keep it in the
     * swarm until it expires and lose its last report from the books. */
    bool stopped = a.event == EVENT_STOPPED;
    if (!tor->enabled && !stopped) {
        torrents_unlock(shard);
        return tracker_reply_failure(rp, FAIL_TORRENT_DISABLED);
    }
    if (a.left > 0 && !user->can_download && !stopped) {
        torrents_unlock(shard);
        return tracker_reply_failure(rp, FAIL_NO_DOWNLOAD);
    }
    delta.torrent_id = tor->id;
    struct acct_mults mults = {
        .torrent = {tor->up_mult, tor->down_mult},
        .freeleech = tor->freeleech,
        .user_class = {user->class_up, user->class_down},
        .personal = {user->personal_up, user->personal_down},
        .event = event_mults(t, delta.at),
    };
    /* A freeleech token replaces the user's own factors on this torrent. */
    const struct torrent_token *token = torrent_token_find(tor, user->id, delta.at);
    if (token) {
        mults.personal = (struct acct_mult){token->up_mult, token->down_mult};
    }
    uint64_t torrent_size = tor->size;
    struct peerset *ps = v6 ? &tor->v6 : &tor->v4;
    /* Was anyone there to upload to? A leecher seen by any announce since
     * this peer's previous one, or one present now, could have received it. */
    bool had_leechers = peerset_leechers(&tor->v4) + peerset_leechers(&tor->v6) > 0;
    uint32_t leech_seen_before = tor->leech_seen;
    if (had_leechers) {
        tor->leech_seen = r.now;
    }
    /* In a cluster, the node that saw the latest announce answers scrapes
     * (torrent_swarm_counts). */
    tor->announced_at = (uint32_t)delta.at;
    if (stopped) {
        peerset_remove(ps, r.key, &prev);
        numwant = 0;
    } else if (peerset_upsert(ps, &r, &prev) != MK_OK) {
        torrents_unlock(shard);
        return tracker_reply_failure(rp, FAIL_SWARM_FULL);
    }
    /* A completion is a snatch only if the client says it has everything. */
    if (a.event == EVENT_COMPLETED && a.left == 0) {
        delta.snatch = torrent_snatch(tor, user->id);
    }

    /* The count is known before picking, so peers are written in place:
     * a seeder sees the leechers; a leecher sees everyone but itself. */
    uint32_t candidates = r.seeder ? peerset_leechers(ps) : peerset_count(ps) - (stopped ? 0 : 1);
    uint32_t count = numwant < candidates ? numwant : candidates;
    uint32_t leechers_now = peerset_leechers(&tor->v4) + peerset_leechers(&tor->v6);
    uint8_t *out;
    if (rp->udp) {
        out = reply_udp_announce(rp, t, tor, leechers_now, (size_t)count * ps->stride);
    } else {
        bencode_dict(b);
        put_counts(b, tor);
        bencode_cstr(b, "external ip");
        bencode_str(b, addr.ip, iplen);
        bencode_cstr(b, "incomplete");
        bencode_int(b, leechers_now);
        bencode_cstr(b, "interval");
        bencode_int(b, atomic_load_explicit(&t->live.interval, memory_order_relaxed));
        bencode_cstr(b, "min interval");
        bencode_int(b, atomic_load_explicit(&t->live.min_interval, memory_order_relaxed));
        bencode_cstr(b, v6 ? "peers6" : "peers");
        out = bencode_str_reserve(b, (size_t)count * ps->stride);
    }
    if (out && count > 0) {
        struct select_query q = {
            .ps = ps, .rng = &l->rng, .self_key = r.key, .for_seeder = r.seeder, .numwant = count};
        uint32_t got = selector_pick(tracker_selector(t, tor->selection), &q, out);
        if (got != count) {
            /* Never expected; keep the answer well-formed regardless. */
            memset(out + (size_t)got * ps->stride, 0, (size_t)(count - got) * ps->stride);
            mk_log(MK_LOG_ERROR, "tracker", "peer selection returned %u of %u", got, count);
        }
    }
    if (!rp->udp) {
        bencode_end(b);
    }
    uint32_t seeders_now = peerset_seeders(&tor->v4) + peerset_seeders(&tor->v6);
    torrents_unlock(shard);

    bool have_prev = prev.existed;
    delta.uploaded = acct_raw_delta(have_prev, prev.uploaded, a.uploaded);
    delta.downloaded = acct_raw_delta(have_prev, prev.downloaded, a.downloaded);
    acct_credit(&mults, delta.uploaded, delta.downloaded, &delta.credited_up,
                &delta.credited_down);
    delta.has_credit = true;
    /* Time since the previous announce, booked as seeding or leeching by
     * what the peer was then; seeding earns bonus points. */
    if (have_prev) {
        uint64_t cap = (uint64_t)atomic_load_explicit(&t->live.interval, memory_order_relaxed) *
                       cfg->expiry_factor;
        uint32_t gap = acct_time_delta(prev.last_seen, r.now,
                                       cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap);
        if (prev.was_seeder) {
            delta.seed_seconds = gap;
            delta.bonus = acct_bonus(&t->bonus, gap, torrent_size, seeders_now);
        } else {
            delta.leech_seconds = gap;
        }
        /* Too good to be true: booked raw, not credited, and listed. */
        bool receiver = had_leechers || leech_seen_before >= prev.last_seen;
        uint64_t max_rate = (uint64_t)cfg->max_upload_mibps << 20;
        uint32_t elapsed = r.now > prev.last_seen ? r.now - prev.last_seen : 0;
        if (acct_is_suspicious(delta.uploaded, elapsed, receiver ? 1 : 0, max_rate)) {
            delta.suspicious = receiver ? ACCT_SUSPICIOUS_TOO_FAST : ACCT_SUSPICIOUS_NO_LEECHERS;
            delta.suspicious_up = delta.uploaded;
            delta.credited_up = 0;
        }
    }
    /* Every announce moves the peer's baseline, so every one is journaled:
     * the store keeps the last report of each peer for the next start. */
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    delta.has_peer = true;
    delta.peer = (struct peer_row){
        .gone = stopped,
        .version = (int64_t)wall.tv_sec * 1000000 + wall.tv_nsec / 1000,
        .torrent_id = delta.torrent_id,
        .user_id = user->id,
        .family = v6 ? 6 : 4,
        .port = a.port,
        .uploaded = a.uploaded,
        .downloaded = a.downloaded,
        .seeder = r.seeder,
        .partial = r.partial,
        .last_seen = delta.at,
        .node_id = (uint16_t)cfg->cluster_node_id, /* whose baseline it is (serve.c) */
        .fresh = !have_prev,
    };
    memcpy(delta.peer.peer_id, a.peer_id, 20);
    memcpy(delta.peer.ip, addr.ip, iplen);
    if (!journal_delta(l, &delta)) {
        /* The swarm moved but the books could not: say so rather than
         * answer an announce whose bytes may never be counted. */
        return tracker_reply_failure(rp, FAIL_BOOKS);
    }
    return 200;
}

/* The enabled user of passkey: true. Otherwise false, with *status the
 * answer's (a refusal written to rp, or TRACKER_PARKED). */
bool tracker_find_user(const struct tracker *t, struct tracker_local *l, struct mk_str passkey,
                       struct user_info *user, struct tracker_reply *rp, int *status)
{
    if (!passkey_is_wellformed(passkey)) {
        *status = tracker_reply_failure(rp, FAIL_UNKNOWN_PASSKEY);
        return false;
    }
    if (!users_find(t->users, passkey.p, passkey.len, user)) {
        int looked = l->lookup[MISS_PASSKEY];
        if (t->resolver && looked == TRACKER_LOOKUP_NONE) {
            park(l, MISS_PASSKEY, (const uint8_t *)passkey.p, passkey.len);
            *status = TRACKER_PARKED;
            return false;
        }
        *status = tracker_reply_failure(rp, !t->resolver || looked == MK_OK ||
                                                    looked == MK_ENOTFOUND
                                                ? FAIL_UNKNOWN_PASSKEY
                                                : FAIL_LOOKUP);
        return false;
    }
    if (!user->enabled) {
        *status = tracker_reply_failure(rp, FAIL_ACCOUNT_DISABLED);
        return false;
    }
    return true;
}

