/* net/tracker.c: announce and scrape, from parsed request to bencoded answer.
 *
 * Owns: the route table, the order of the private-tracker checks (passkey,
 * parameters, whitelist, torrent, download rights: cheapest and least
 * revealing first), the failure-reason table, the swarm update under one
 * shard lock, and adding the accounting delta to the worker's journal batch.
 * Not here: sockets and HTTP framing (server.c), parsing (proto/), the peer
 * set and selection (swarm/), writing the books (acct/).
 */
#include "net/tracker.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "acct/rules.h"
#include "proto/query.h"
#include "proto/udp.h"
#include "util/log.h"
#include "util/siphash.h"

/* Every refusal a client can get for a well-formed request, and its words.
 * Parameter errors are not here: the parser's message names the key. */
enum tracker_failure {
    FAIL_UNKNOWN_PASSKEY,
    FAIL_ACCOUNT_DISABLED,
    FAIL_NO_DOWNLOAD,
    FAIL_UNREGISTERED,
    FAIL_TORRENT_DISABLED,
    FAIL_CLIENT,
    FAIL_FAMILY_V4,
    FAIL_FAMILY_V6,
    FAIL_SWARM_FULL,
    FAIL_NOT_FOUND,
    FAIL_BOOKS,
    FAIL_LOOKUP,
};

static const char *const failure_reasons[] = {
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

/* Metric labels, by enum tracker_failure; a refusal whose text is none of
 * failure_reasons (a bad parameter: the parser's message) is bad_request. */
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
#define FAIL_BAD_REQUEST (FAIL_LOOKUP + 1)
_Static_assert(FAIL_BAD_REQUEST + 1 == TRACKER_FAILURE_KINDS,
               "TRACKER_FAILURE_KINDS counts every failure and bad_request");

/* Announce latency buckets, seconds (Prometheus `le`). */
static const double latency_bounds[TRACKER_LATENCY_BUCKETS] = {
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
    0.001,   0.0025,   0.005,   0.01,   0.05,    0.25,
};

/* Fixed part of an announce answer: keys, counts and the external ip. */
#define ANNOUNCE_FIXED_MAX 256

static int answer_failure(struct bencode *b, enum tracker_failure f)
{
    bencode_failure(b, failure_reasons[f]);
    return 200;
}

/* Where an announce's answer goes and in which framing: a bencoded body
 * (HTTP) or a BEP 15 packet (UDP) for transaction tid. The announce logic is
 * one; only these writers differ. */
struct reply {
    struct bencode *b;
    bool udp;
    uint32_t tid;
};

/* Appends n bytes written by a udp_put_* call; 0 means no room. */
static void reply_udp_advance(struct bencode *b, size_t n)
{
    if (n == 0) {
        b->overflow = true;
    }
    b->len += n;
}

static int reply_failure_msg(struct reply *rp, const char *msg)
{
    if (rp->udp) {
        struct bencode *b = rp->b;
        reply_udp_advance(b, udp_put_error(b->p + b->len, b->cap - b->len, rp->tid, msg));
    } else {
        bencode_failure(rp->b, msg);
    }
    return 200;
}

static int reply_failure(struct reply *rp, enum tracker_failure f)
{
    return reply_failure_msg(rp, failure_reasons[f]);
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

size_t tracker_max_body(const struct mk_config *cfg)
{
    size_t announce = ANNOUNCE_FIXED_MAX + (size_t)cfg->numwant_max * PEER_COMPACT_MAX;
    /* d5:filesd + per hash "20:<hash>d8:completei..e10:downloadedi..e11:downloadersi..e10:incompletei..ee" */
    size_t scrape = 16 + (size_t)cfg->scrape_max_hashes * (23 + 4 * 32);
    return announce > scrape ? announce : scrape;
}

/* "/<passkey>/<action>" -> views; false when the path has another shape. */
static bool split_path(struct mk_str path, struct mk_str *passkey, struct mk_str *action)
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

/* The rightmost address of a comma list: the hop our trusted proxy saw. */
static bool parse_forwarded(struct mk_str v, struct tracker_addr *out)
{
    const char *end = v.p + v.len;
    const char *start = v.p;
    for (const char *p = v.p; p < end; p++) {
        if (*p == ',') {
            start = p + 1;
        }
    }
    while (start < end && (*start == ' ' || *start == '\t')) {
        start++;
    }
    while (end > start && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    char text[INET6_ADDRSTRLEN + 1];
    size_t len = (size_t)(end - start);
    if (len == 0 || len >= sizeof(text)) {
        return false;
    }
    memcpy(text, start, len);
    text[len] = '\0';
    memset(out->ip, 0, sizeof(out->ip));
    if (inet_pton(AF_INET, text, out->ip) == 1) {
        out->family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, text, out->ip) == 1) {
        /* A dual-stack proxy writes an IPv4 client as ::ffff:a.b.c.d: that
         * client lives in the IPv4 swarm. */
        static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(out->ip, v4_mapped, sizeof(v4_mapped)) == 0) {
            memmove(out->ip, out->ip + 12, 4);
            memset(out->ip + 4, 0, 12);
            out->family = AF_INET;
        } else {
            out->family = AF_INET6;
        }
        return true;
    }
    return false;
}

/* The address to publish: the source, or what a trusted proxy says it saw. */
static void client_addr(const struct tracker *t, const struct http_request *req,
                        const struct tracker_addr *src, struct tracker_addr *out)
{
    *out = *src;
    if (req->real_ip.len == 0 || !config_is_trusted_proxy(t->cfg, src->family, src->ip)) {
        return;
    }
    struct tracker_addr fwd;
    if (parse_forwarded(req->real_ip, &fwd)) {
        *out = fwd;
    } else {
        mk_log(MK_LOG_DEBUG, "tracker", "ignoring unparsable %s header from a trusted proxy",
               t->cfg->real_ip_header);
    }
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

static uint64_t peer_identity(const struct tracker *t, const uint8_t peer_id[20], uint32_t user_id)
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
static uint8_t *reply_udp_announce(struct reply *rp, const struct tracker *t,
                                   const struct torrent *tor, uint32_t leechers, size_t peer_bytes)
{
    struct bencode *b = rp->b;
    uint32_t seeders = peerset_seeders(&tor->v4) + peerset_seeders(&tor->v6);
    size_t n = udp_put_announce_head(b->p + b->len, b->cap - b->len, rp->tid,
                                     atomic_load_explicit(&t->live.interval, memory_order_relaxed),
                                     leechers, seeders);
    reply_udp_advance(b, n);
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
static int announce(const struct tracker *t, struct tracker_local *l, const struct user_info *user,
                    struct announce_req a, struct tracker_addr addr, struct reply *rp)
{
    const struct mk_config *cfg = t->cfg;
    struct bencode *b = rp->b;
    if (cfg->whitelist) {
        whitelist_view_refresh(&l->whitelist, t->whitelist);
        if (!whitelist_match(&l->whitelist, a.peer_id)) {
            return reply_failure(rp, FAIL_CLIENT);
        }
    }
    if (cfg->allow_ip_param) {
        apply_ip_params(&a, &addr);
    }
    if (addr.family == AF_INET && !cfg->ipv4) {
        return reply_failure(rp, FAIL_FAMILY_V4);
    }
    /* The store has been away so long that the journal reached its bound:
     * refuse rather than answer what could not be booked. */
    if (atomic_load_explicit(&t->journal_backlog, memory_order_relaxed) >
        (uint64_t)cfg->journal_max_mib << 20) {
        return reply_failure(rp, FAIL_BOOKS);
    }
    if (addr.family == AF_INET6 && !cfg->ipv6) {
        return reply_failure(rp, FAIL_FAMILY_V6);
    }
    bool v6 = addr.family == AF_INET6;

    struct peer_report r = {
        .key = peer_identity(t, a.peer_id, user->id),
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
        return reply_failure(rp, looked == MK_OK || looked == MK_ENOTFOUND ? FAIL_UNREGISTERED
                                                                           : FAIL_LOOKUP);
    }
    if (!tor || tor->deleted) {
        if (tor && tor->reason) {
            char msg[MK_REASON_MAX + 32];
            snprintf(msg, sizeof(msg), "%s: %s", failure_reasons[FAIL_UNREGISTERED], tor->reason);
            torrents_unlock(shard);
            return reply_failure_msg(rp, msg);
        }
        torrents_unlock(shard);
        return reply_failure(rp, FAIL_UNREGISTERED);
    }
    /* A peer may always leave: refusing its `stopped` would keep it in the
     * swarm until it expires and lose its last report from the books. */
    bool stopped = a.event == EVENT_STOPPED;
    if (!tor->enabled && !stopped) {
        torrents_unlock(shard);
        return reply_failure(rp, FAIL_TORRENT_DISABLED);
    }
    if (a.left > 0 && !user->can_download && !stopped) {
        torrents_unlock(shard);
        return reply_failure(rp, FAIL_NO_DOWNLOAD);
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
        return reply_failure(rp, FAIL_SWARM_FULL);
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
    };
    memcpy(delta.peer.peer_id, a.peer_id, 20);
    memcpy(delta.peer.ip, addr.ip, iplen);
    if (!journal_delta(l, &delta)) {
        /* The swarm moved but the books could not: say so rather than
         * answer an announce whose bytes may never be counted. */
        return reply_failure(rp, FAIL_BOOKS);
    }
    return 200;
}

/* HTTP: the query string parsed, the client's address found. */
static int announce_http(const struct tracker *t, struct tracker_local *l,
                         const struct user_info *user, const struct http_request *req,
                         const struct tracker_addr *src, struct bencode *b)
{
    struct announce_req a;
    struct mk_errbuf eb = {{0}};
    if (announce_parse(req->query.p, req->query.len, t->cfg->max_query_params, &a, &eb) !=
        MK_OK) {
        bencode_failure(b, eb.msg);
        return 200;
    }
    struct tracker_addr addr;
    client_addr(t, req, src, &addr);
    struct reply rp = {.b = b};
    return announce(t, l, user, a, addr, &rp);
}

static int scrape(const struct tracker *t, struct tracker_local *l, const struct http_request *req,
                  struct bencode *b)
{
    size_t n = 0;
    struct mk_errbuf eb = {{0}};
    if (scrape_parse(req->query.p, req->query.len, l->hashes, t->cfg->scrape_max_hashes, &n, &eb) !=
        MK_OK) {
        bencode_failure(b, eb.msg);
        return 200;
    }
    bencode_dict(b);
    bencode_cstr(b, "files");
    bencode_dict(b);
    /* Hashes arrive sorted, so the dictionary's keys are in order (BEP 3). */
    for (size_t i = 0; i < n; i++) {
        struct torrent_shard *shard;
        struct torrent *tor = torrents_lock(t->torrents, l->hashes[i], &shard);
        if (tor && !tor->deleted && tor->enabled) {
            /* In a cluster, the node that saw the swarm's latest announce
             * answers (cluster/counts.c); always this one on a single node.
             * Downloaders are this node's own, at most the leechers. */
            uint32_t seeders, leechers;
            torrent_swarm_counts(tor, &seeders, &leechers);
            uint32_t downloaders = peerset_downloaders(&tor->v4) + peerset_downloaders(&tor->v6);
            bencode_str(b, l->hashes[i], 20);
            bencode_dict(b);
            bencode_cstr(b, "complete");
            bencode_int(b, seeders);
            bencode_cstr(b, "downloaded");
            bencode_int(b, tor->snatches);
            bencode_cstr(b, "downloaders");
            bencode_int(b, downloaders < leechers ? downloaders : leechers);
            bencode_cstr(b, "incomplete");
            bencode_int(b, leechers);
            bencode_end(b);
        }
        torrents_unlock(shard);
    }
    bencode_end(b);
    bencode_end(b);
    return 200;
}

/* The enabled user of passkey: true. Otherwise false, with *status the
 * answer's (a refusal written to rp, or TRACKER_PARKED). */
static bool find_user(const struct tracker *t, struct tracker_local *l, struct mk_str passkey,
                      struct user_info *user, struct reply *rp, int *status)
{
    if (!passkey_is_wellformed(passkey)) {
        *status = reply_failure(rp, FAIL_UNKNOWN_PASSKEY);
        return false;
    }
    if (!users_find(t->users, passkey.p, passkey.len, user)) {
        int looked = l->lookup[MISS_PASSKEY];
        if (t->resolver && looked == TRACKER_LOOKUP_NONE) {
            park(l, MISS_PASSKEY, (const uint8_t *)passkey.p, passkey.len);
            *status = TRACKER_PARKED;
            return false;
        }
        *status = reply_failure(rp, !t->resolver || looked == MK_OK || looked == MK_ENOTFOUND
                                        ? FAIL_UNKNOWN_PASSKEY
                                        : FAIL_LOOKUP);
        return false;
    }
    if (!user->enabled) {
        *status = reply_failure(rp, FAIL_ACCOUNT_DISABLED);
        return false;
    }
    return true;
}

static int tracker_route(const struct tracker *t, struct tracker_local *l,
                         const struct http_request *req, const struct tracker_addr *src,
                         struct bencode *b)
{
    struct mk_str passkey, action;
    if (!split_path(req->path, &passkey, &action)) {
        answer_failure(b, FAIL_NOT_FOUND);
        return 404;
    }
    bool is_announce = mk_str_eq(action, "announce");
    if (!is_announce && !mk_str_eq(action, "scrape")) {
        answer_failure(b, FAIL_NOT_FOUND);
        return 404;
    }
    struct user_info user;
    struct reply rp = {.b = b};
    int status;
    if (!find_user(t, l, passkey, &user, &rp, &status)) {
        return status;
    }
    return is_announce ? announce_http(t, l, &user, req, src, b) : scrape(t, l, req, b);
}

static unsigned failure_kind_text(const char *text, size_t n);

/* The failure kind of an answer body, or TRACKER_FAILURE_KINDS for none.
 * Only refusals pay for more than one compare. */
static unsigned failure_kind(const uint8_t *p, size_t len)
{
    static const char head[] = "d14:failure reason";
    size_t hlen = sizeof(head) - 1;
    if (len < hlen || memcmp(p, head, hlen) != 0) {
        return TRACKER_FAILURE_KINDS;
    }
    size_t i = hlen, n = 0;
    while (i < len && p[i] >= '0' && p[i] <= '9' && n < 100000) {
        n = n * 10 + (size_t)(p[i++] - '0');
    }
    if (i >= len || p[i] != ':' || n > len - i - 1) {
        return FAIL_BAD_REQUEST;
    }
    return failure_kind_text((const char *)p + i + 1, n);
}

/* The failure kind of a refusal's words: FAIL_BAD_REQUEST unless they are
 * one of failure_reasons. */
static unsigned failure_kind_text(const char *text, size_t n)
{
    for (unsigned f = 0; f < FAIL_BAD_REQUEST; f++) {
        size_t flen = strlen(failure_reasons[f]);
        /* "unregistered torrent: <reason>" is an unregistered torrent too. */
        if (n >= flen && memcmp(text, failure_reasons[f], flen) == 0 &&
            (n == flen || (f == FAIL_UNREGISTERED && text[flen] == ':'))) {
            return f;
        }
    }
    return FAIL_BAD_REQUEST;
}

static bool path_ends_with(struct mk_str path, const char *suffix)
{
    size_t n = strlen(suffix);
    return path.len >= n && memcmp(path.p + path.len - n, suffix, n) == 0;
}

static void count_answer(struct tracker_local *l, unsigned kind, bool is_scrape,
                         const struct timespec *t0_p);

/* GET /health, for a load balancer's checks (HAProxy's option httpchk):
 * 200 "ok" while this node serves, 503 while it stops or while the journal
 * backlog refuses announces. Plain text, not bencode; not counted. */
static int answer_health(const struct tracker *t, struct bencode *b)
{
    bool refusing = atomic_load_explicit(&t->journal_backlog, memory_order_relaxed) >
                    (uint64_t)t->cfg->journal_max_mib << 20;
    bool stopping = atomic_load_explicit(&t->stopping, memory_order_relaxed);
    const char *text = stopping ? "stopping" : refusing ? "journal backlog" : "ok";
    size_t n = strlen(text);
    if (n <= b->cap) {
        memcpy(b->p, text, n);
        b->len = n;
    }
    return stopping || refusing ? 503 : 200;
}

int tracker_answer(const struct tracker *t, struct tracker_local *l, const struct http_request *req,
                   const struct tracker_addr *src, struct bencode *b)
{
    /* One compare of a short path: the announce path pays nothing more. */
    if (req->path.len == 7 && memcmp(req->path.p, "/health", 7) == 0) {
        return answer_health(t, b);
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t start = b->len;
    int status = tracker_route(t, l, req, src, b);
    if (!l->counters || status == TRACKER_PARKED) {
        return status;
    }
    count_answer(l, failure_kind(b->p + start, b->len - start),
                 path_ends_with(req->path, "/scrape"), &t0);
    return status;
}

/* Counts one answer of either transport: its failure kind (or
 * TRACKER_FAILURE_KINDS), and an announce's latency from t0. */
static void count_answer(struct tracker_local *l, unsigned kind, bool is_scrape,
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

/* ---- UDP (BEP 15) ------------------------------------------------------- */

/* The failure kind of a UDP answer at p[0..len), or TRACKER_FAILURE_KINDS. */
static unsigned udp_failure_kind(const uint8_t *p, size_t len)
{
    if (len < 8 || p[0] != 0 || p[1] != 0 || p[2] != 0 || p[3] != UDP_ERROR) {
        return TRACKER_FAILURE_KINDS;
    }
    return failure_kind_text((const char *)p + 8, len - 8);
}

int tracker_udp_announce(const struct tracker *t, struct tracker_local *l, struct mk_str url,
                         const struct announce_req *a, uint32_t tid,
                         const struct tracker_addr *src, struct bencode *b)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t start = b->len;
    struct reply rp = {.b = b, .udp = true, .tid = tid};
    /* BEP 41's URL data is the announce URL's path and query: the path
     * names the user exactly as HTTP's does. */
    const char *q = memchr(url.p, '?', url.len);
    struct mk_str path = {url.p, q ? (size_t)(q - url.p) : url.len};
    struct mk_str passkey, action;
    int status;
    struct user_info user;
    if (url.len == 0) {
        status = reply_failure_msg(&rp, "passkey: missing (announce URL /<passkey>/announce)");
    } else if (!split_path(path, &passkey, &action) || !mk_str_eq(action, "announce")) {
        status = reply_failure(&rp, FAIL_NOT_FOUND);
    } else if (find_user(t, l, passkey, &user, &rp, &status)) {
        /* No proxy speaks UDP for us: the source is the client. */
        status = announce(t, l, &user, *a, *src, &rp);
    }
    if (status != TRACKER_PARKED) {
        count_answer(l, udp_failure_kind(b->p + start, b->len - start), false, &t0);
    }
    return status;
}

int tracker_udp_scrape(const struct tracker *t, struct tracker_local *l, const uint8_t *hashes,
                       size_t n, uint32_t tid, struct bencode *b)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    reply_udp_advance(b, udp_put_scrape_head(b->p + b->len, b->cap - b->len, tid));
    /* BEP 15 answers every hash in the asked order; one that is not a
     * registered, enabled torrent reads as an empty swarm, as an unknown
     * key does in HTTP's scrape (which leaves it out). */
    for (size_t i = 0; i < n && !b->overflow; i++) {
        uint32_t seeders = 0, completed = 0, leechers = 0;
        struct torrent_shard *shard;
        struct torrent *tor = torrents_lock(t->torrents, hashes + 20 * i, &shard);
        if (tor && !tor->deleted && tor->enabled) {
            torrent_swarm_counts(tor, &seeders, &leechers);
            completed = tor->snatches;
        }
        torrents_unlock(shard);
        reply_udp_advance(b, udp_put_scrape_entry(b->p + b->len, b->cap - b->len, seeders,
                                                  completed, leechers));
    }
    count_answer(l, TRACKER_FAILURE_KINDS, true, &t0);
    return 200;
}

size_t tracker_udp_max_answer(const struct mk_config *cfg)
{
    size_t announce = UDP_ANNOUNCE_HEAD + (size_t)cfg->numwant_max * PEER_COMPACT_MAX;
    size_t scrape = UDP_SCRAPE_HEAD + (size_t)UDP_SCRAPE_MAX * UDP_SCRAPE_ENTRY;
    size_t error = 8 + UDP_ERROR_MAX;
    size_t max = announce > scrape ? announce : scrape;
    return max > error ? max : error;
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

int tracker_restore_peer(const struct tracker *t, const struct peer_row *row, int64_t now_wall)
{
    uint64_t ttl = (uint64_t)atomic_load(&t->live.interval) * t->cfg->expiry_factor;
    int64_t age = now_wall - row->last_seen;
    uint32_t now = tracker_now(t);
    if (age < 0) {
        age = 0; /* the wall clock stepped back: treat it as just seen */
    }
    if ((uint64_t)age > ttl || (uint64_t)age >= now) {
        return MK_ENOTFOUND;
    }
    /* In a cluster, a report another node answered (the swarm moved) may be
     * followed there by reports this node never sees: its baseline would
     * credit their bytes again. The peer, when it comes back, is new here. */
    if (t->cfg->cluster_node_id != 0 && row->node_id != t->cfg->cluster_node_id) {
        return MK_ENOTFOUND;
    }
    bool v6 = row->family == 6;
    if ((v6 && !t->cfg->ipv6) || (!v6 && !t->cfg->ipv4)) {
        return MK_ENOTFOUND;
    }
    struct peer_report r = {
        .key = peer_identity(t, row->peer_id, row->user_id),
        .user_id = row->user_id,
        .uploaded = row->uploaded,
        .downloaded = row->downloaded,
        .seeder = row->seeder,
        .partial = row->partial && !row->seeder,
        .now = now - (uint32_t)age,
        .locate = geo_has_location(t->geo) ? geo_locate : NULL,
        .locate_net = geo_has_asn(t->geo) ? geo_locate_net : NULL,
        .locate_arg = t->geo,
    };
    size_t iplen = v6 ? 16 : 4;
    memcpy(r.addr, row->ip, iplen);
    r.addr[iplen] = (uint8_t)(row->port >> 8);
    r.addr[iplen + 1] = (uint8_t)(row->port & 0xff);
    struct torrent_shard *shard;
    struct torrent *tor = torrents_lock(t->torrents, row->info_hash, &shard);
    int rc = MK_ENOTFOUND;
    if (tor && !tor->deleted && tor->enabled) {
        struct peer_prev prev;
        rc = peerset_upsert(v6 ? &tor->v6 : &tor->v4, &r, &prev);
        /* The restored report was this swarm's announce here, then. */
        if (rc == MK_OK && row->last_seen > (int64_t)tor->announced_at &&
            row->last_seen <= (int64_t)UINT32_MAX) {
            tor->announced_at = (uint32_t)row->last_seen;
        }
    }
    torrents_unlock(shard);
    return rc;
}

uint32_t tracker_reap_shard(const struct tracker *t, uint32_t shard)
{
    uint32_t now = tracker_now(t);
    uint64_t interval = atomic_load_explicit(&t->live.interval, memory_order_relaxed);
    uint64_t ttl = interval * t->cfg->expiry_factor;
    uint32_t cutoff = now > ttl ? (uint32_t)(now - ttl) : 0;
    return torrents_reap_shard(t->torrents, shard, cutoff);
}
