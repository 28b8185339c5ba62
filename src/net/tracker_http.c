/* net/tracker_http.c: the HTTP tracker's routes, from a parsed request to a
 * bencoded body.
 *
 * Owns: the routes (/<passkey>/announce, /<passkey>/scrape, /health), the
 * client's address behind a trusted proxy, HTTP's scrape answer, the size
 * of the largest body, and the failure kind of an answer body for the
 * counters.
 * Not here: the announce itself and who is asking (tracker.c), sockets and
 * framing (server.c, conn.c), parsing the query (proto/query.c).
 * Invariant: never blocks; holds at most one shard lock at a time.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "net/tracker.h"
#include "net/tracker_int.h"
#include "util/log.h"

/* Fixed part of an announce answer: keys, counts and the external ip. */
#define ANNOUNCE_FIXED_MAX 256

static int answer_failure(struct bencode *b, enum tracker_failure f)
{
    bencode_failure(b, tracker_failure_reasons[f]);
    return 200;
}

size_t tracker_max_body(const struct mk_config *cfg)
{
    size_t announce = ANNOUNCE_FIXED_MAX + (size_t)cfg->numwant_max * PEER_COMPACT_MAX;
    /* d5:filesd + per hash "20:<hash>d8:completei..e10:downloadedi..e11:downloadersi..e10:incompletei..ee" */
    size_t scrape = 16 + (size_t)cfg->scrape_max_hashes * (23 + 4 * 32);
    return announce > scrape ? announce : scrape;
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
    struct tracker_reply rp = {.b = b};
    return tracker_announce(t, l, user, a, addr, &rp);
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

static int tracker_route(const struct tracker *t, struct tracker_local *l,
                         const struct http_request *req, const struct tracker_addr *src,
                         struct bencode *b)
{
    struct mk_str passkey, action;
    if (!tracker_split_path(req->path, &passkey, &action)) {
        answer_failure(b, FAIL_NOT_FOUND);
        return 404;
    }
    bool is_announce = mk_str_eq(action, "announce");
    if (!is_announce && !mk_str_eq(action, "scrape")) {
        answer_failure(b, FAIL_NOT_FOUND);
        return 404;
    }
    struct user_info user;
    struct tracker_reply rp = {.b = b};
    int status;
    if (!tracker_find_user(t, l, passkey, &user, &rp, &status)) {
        return status;
    }
    return is_announce ? announce_http(t, l, &user, req, src, b) : scrape(t, l, req, b);
}

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
    return tracker_failure_kind_text((const char *)p + i + 1, n);
}

static bool path_ends_with(struct mk_str path, const char *suffix)
{
    size_t n = strlen(suffix);
    return path.len >= n && memcmp(path.p + path.len - n, suffix, n) == 0;
}

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
    tracker_count_answer(l, failure_kind(b->p + start, b->len - start),
                 path_ends_with(req->path, "/scrape"), &t0);
    return status;
}
