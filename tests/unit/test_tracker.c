/* tests/unit/test_tracker.c: tracker_answer from request bytes to bencoded
 * body, with in-memory users, torrents and whitelist and a real journal writer.
 *
 * Owns: the announce answer byte for byte (keys, counts, compact peers of each
 * family), who sees whom, numwant, events, the accounting deltas pushed to the
 * journal, every refusal and the order of the checks, 404s, proxy and ipv4=/ipv6=
 * addresses, reaping by the tracker clock, and scrape.
 * Not here: sockets and framing (server.c), query and HTTP parsing details
 * (test_query.c, test_http.c), the peer set itself (test_peers.c).
 * Expected bodies are built by hand here, never with proto/bencode.
 * Requests go through http_parse_request from a copy that ends at a guard
 * page, so the views tracker_answer reads are real ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guard.h"
#include "net/tracker.h"
#include "proto/http.h"

/* ---- fixture ---------------------------------------------------------- */

#define HASH(first)                                                                        \
    {(first), 0x00, 0x25, 0x26, 0x2b, 0x3d, 0xff, 0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}

/* Registered: H1 < H2 (memcmp), HDIS disabled, HDEL deleted with a reason,
 * HDELNR deleted without one. HNONE is not registered. */
static const uint8_t H1[20] = HASH(0x10);
static const uint8_t H2[20] = HASH(0x20);
static const uint8_t HDIS[20] = HASH(0x30);
static const uint8_t HDEL[20] = HASH(0x40);
static const uint8_t HDELNR[20] = HASH(0x50);
static const uint8_t HNONE[20] = HASH(0x60);

/* Whitelisted prefixes are "-TR" and "-qB"; PX matches neither. */
#define PA "-TR3000-aaaaaaaaaaaa"
#define PB "-TR3000-bbbbbbbbbbbb"
#define PC "-qB4500-cccccccccccc"
#define PD "-TR3000-dddddddddddd"
#define PE "-qB4500-eeeeeeeeeeee"
#define PF "-TR3000-ffffffffffff"
#define PX "-XX0100-xxxxxxxxxxxx"

enum { ALICE = 1, BOB = 2, CAROL = 3, DAVE = 4, FROZEN = 5, SEEDONLY = 6 };
enum { T1 = 101, T2 = 102 };

struct fx {
    struct mk_config cfg;
    struct users *users;
    struct torrents *torrents;
    struct whitelist *wl;
    struct tracker t;
    struct journal_writer journal; /* its batch is where deltas land */
    char jdir[64];
    struct tracker_local l;
    bool started;      /* tracker_init done: live settings copied from cfg */
    bool local_ready;
    uint32_t exp_interval, exp_min_interval; /* what answers must say */
    int64_t t0;        /* wall clock before the test: lower bound of acct_delta.at */
    uint8_t *body;     /* last answer */
    size_t len;
};

static void fx_user(struct fx *f, uint32_t id, const char *pk, bool enabled, bool can_download)
{
    struct user_row r;
    memset(&r, 0, sizeof(r));
    r.id = id;
    snprintf(r.passkey, sizeof(r.passkey), "%s", pk);
    r.enabled = enabled;
    r.can_download = can_download;
    assert_int_equal(users_put(f->users, &r, 1), 0);
}

static void fx_torrent(struct fx *f, uint32_t id, const uint8_t hash[20], bool enabled,
                       bool deleted, const char *reason)
{
    struct torrent_row r;
    memset(&r, 0, sizeof(r));
    r.id = id;
    memcpy(r.info_hash, hash, 20);
    r.enabled = enabled;
    r.deleted = deleted;
    snprintf(r.reason, sizeof(r.reason), "%s", reason);
    assert_int_equal(torrents_put(f->torrents, &r, 1), 0);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    config_defaults(&f->cfg);
    f->users = users_new(4);
    f->torrents = torrents_new(4);
    f->wl = whitelist_new();
    assert_non_null(f->users);
    assert_non_null(f->torrents);
    assert_non_null(f->wl);

    fx_user(f, ALICE, "alice", true, true);
    fx_user(f, BOB, "bob", true, true);
    fx_user(f, CAROL, "carol", true, true);
    fx_user(f, DAVE, "dave", true, true);
    fx_user(f, FROZEN, "frozen", false, true);
    fx_user(f, SEEDONLY, "seedonly", true, false);

    fx_torrent(f, T1, H1, true, false, "");
    fx_torrent(f, T2, H2, true, false, "");
    fx_torrent(f, 103, HDIS, false, false, "");
    fx_torrent(f, 104, HDEL, true, true, "duplicate of 101");
    fx_torrent(f, 105, HDELNR, true, true, "");

    struct whitelist_row rows[2];
    memset(rows, 0, sizeof(rows));
    memcpy(rows[0].prefix, "-TR", 3);
    rows[0].prefix_len = 3;
    snprintf(rows[0].name, sizeof(rows[0].name), "Transmission");
    memcpy(rows[1].prefix, "-qB", 3);
    rows[1].prefix_len = 3;
    snprintf(rows[1].name, sizeof(rows[1].name), "qBittorrent");
    assert_int_equal(whitelist_replace(f->wl, rows, 2), 0);

    snprintf(f->jdir, sizeof(f->jdir), "/tmp/mika-ttrack-XXXXXX");
    assert_non_null(mkdtemp(f->jdir));
    assert_int_equal(journal_writer_open(&f->journal, f->jdir, 1, 0, 64, 1 << 20, 100000,
                                         JOURNAL_FSYNC_NEVER, 0, NULL), 0);
    f->t0 = (int64_t)time(NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->local_ready) {
        tracker_local_fini(&f->l);
    }
    f->journal.nbatch = 0; /* what a test left unread is not written out */
    journal_writer_close(&f->journal);
    rmdir(f->jdir);
    whitelist_free(f->wl);
    torrents_free(f->torrents);
    users_free(f->users);
    free(f->body);
    free(f);
    return 0;
}

/* ---- requests --------------------------------------------------------- */

static struct tracker_addr addr4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    struct tracker_addr x;
    memset(&x, 0, sizeof(x));
    x.family = AF_INET;
    x.ip[0] = a;
    x.ip[1] = b;
    x.ip[2] = c;
    x.ip[3] = d;
    return x;
}

static struct tracker_addr addr6(const char *text)
{
    struct tracker_addr x;
    memset(&x, 0, sizeof(x));
    x.family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, text, x.ip), 1);
    return x;
}

/* Late, so a test can change cfg first: tracker_init copies the live
 * settings (interval, min interval, numwant cap) from it. */
static void fx_start(struct fx *f)
{
    if (!f->started) {
        struct mk_errbuf eb = {{0}};
        assert_int_equal(tracker_init(&f->t, &f->cfg, f->users, f->torrents, f->wl, &eb), 0);
        /* Time stands still unless a test moves it (fx_age): a slow run,
         * under valgrind on a busy machine, sees the same seconds. */
        f->t.frozen_now = tracker_now(&f->t);
        f->exp_interval = f->cfg.interval;
        f->exp_min_interval = f->cfg.min_interval;
        f->started = true;
    }
    if (!f->local_ready) {
        /* scrape_max_hashes sizes the worker's scratch. */
        assert_int_equal(tracker_local_init(&f->l, &f->t, &f->journal, 42), 0);
        f->local_ready = true;
    }
}

/* Sends "GET <target>" with extra header lines (each ending in CRLF) from
 * src; the body lands in f->body / f->len. Returns the status. */
static int fx_get(struct fx *f, const char *target, const char *headers, struct tracker_addr src)
{
    fx_start(f);
    char head[8192];
    int n = snprintf(head, sizeof(head), "GET %s HTTP/1.1\r\nHost: tracker.test\r\n%s\r\n", target,
                     headers ? headers : "");
    assert_true(n > 0 && (size_t)n < sizeof(head));
    char *g = guard_dup(head, (size_t)n);
    struct http_parser ps;
    http_parser_reset(&ps);
    struct http_limits lim = {.max_request_line = 4096, .max_head = 8192, .max_headers = 64};
    struct mk_str hdr = {f->cfg.real_ip_header, strlen(f->cfg.real_ip_header)};
    struct http_request req;
    assert_int_equal(http_parse_request(g, (size_t)n, &ps, &lim, hdr, &req), HTTP_PARSE_DONE);

    free(f->body);
    size_t cap = tracker_max_body(&f->cfg);
    f->body = malloc(cap);
    assert_non_null(f->body);
    struct bencode b;
    bencode_init(&b, f->body, cap);
    int status = tracker_answer(&f->t, &f->l, &req, &src, &b);
    assert_true(bencode_ok(&b));
    f->len = b.len;
    guard_free(g, (size_t)n);
    return status;
}

static size_t pct(char *out, const void *bytes, size_t n)
{
    const uint8_t *p = bytes;
    for (size_t i = 0; i < n; i++) {
        sprintf(out + 3 * i, "%%%02X", p[i]);
    }
    return 3 * n;
}

struct ann {
    const char *pk;          /* default "alice" */
    const uint8_t *hash;     /* default H1 */
    const char *peer_id;     /* 20 bytes; default PA */
    uint16_t port;           /* default 6881 */
    uint64_t up, down, left;
    const char *event;       /* NULL: no event= */
    const char *extra;       /* appended to the query as is: "&numwant=3" */
    const char *headers;
};

static int fx_announce(struct fx *f, struct ann a, struct tracker_addr src)
{
    const char *pid = a.peer_id ? a.peer_id : PA;
    assert_int_equal(strlen(pid), 20);
    char ih[61] = {0}, pi[61] = {0};
    pct(ih, a.hash ? a.hash : H1, 20);
    pct(pi, pid, 20);
    char target[1024];
    int n = snprintf(target, sizeof(target),
                     "/%s/announce?info_hash=%s&peer_id=%s&port=%u&uploaded=%llu"
                     "&downloaded=%llu&left=%llu&compact=1%s%s%s",
                     a.pk ? a.pk : "alice", ih, pi, a.port ? a.port : 6881,
                     (unsigned long long)a.up, (unsigned long long)a.down,
                     (unsigned long long)a.left, a.event ? "&event=" : "", a.event ? a.event : "",
                     a.extra ? a.extra : "");
    assert_true(n > 0 && (size_t)n < sizeof(target));
    return fx_get(f, target, a.headers, src);
}

/* "/<pk>/scrape?info_hash=..&info_hash=.." for n hashes. */
static int fx_scrape(struct fx *f, const char *pk, const uint8_t *const *hashes, size_t n)
{
    char target[4096];
    size_t len = (size_t)snprintf(target, sizeof(target), "/%s/scrape", pk);
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(target + len, sizeof(target) - len, "%cinfo_hash=",
                                i == 0 ? '?' : '&');
        len += pct(target + len, hashes[i], 20);
    }
    assert_true(len < sizeof(target));
    return fx_get(f, target, NULL, addr4(198, 51, 100, 1));
}

/* ---- expected bytes --------------------------------------------------- */

struct exp {
    uint8_t p[8192];
    size_t len;
};

static void ex_raw(struct exp *e, const void *s, size_t n)
{
    assert_true(e->len + n <= sizeof(e->p));
    memcpy(e->p + e->len, s, n);
    e->len += n;
}

static void ex_fmt(struct exp *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ex_fmt(struct exp *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf((char *)e->p + e->len, sizeof(e->p) - e->len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && e->len + (size_t)n < sizeof(e->p));
    e->len += (size_t)n;
}

/* Prints bytes with non-printable ones as \xNN, for failure messages. */
static void print_bytes(const char *label, const uint8_t *p, size_t n)
{
    char line[4 * 512 + 1];
    size_t k = 0;
    for (size_t i = 0; i < n && k + 5 < sizeof(line); i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
            line[k++] = (char)p[i];
        } else {
            k += (size_t)snprintf(line + k, sizeof(line) - k, "\\x%02x", p[i]);
        }
    }
    line[k] = '\0';
    print_error("%s (%zu bytes): %s\n", label, n, line);
}

static void assert_body(const struct fx *f, const struct exp *e)
{
    if (f->len != e->len || memcmp(f->body, e->p, e->len) != 0) {
        print_bytes("body", f->body, f->len);
        print_bytes("expected", e->p, e->len);
    }
    assert_int_equal(f->len, e->len);
    assert_memory_equal(f->body, e->p, e->len);
}

static void assert_failure(const struct fx *f, int status, const char *msg)
{
    struct exp e = {.len = 0};
    ex_fmt(&e, "d14:failure reason%zu:%se", strlen(msg), msg);
    assert_int_equal(status, 200);
    assert_body(f, &e);
}

/* A set of compact peer entries the answer's peers must be drawn from. */
struct entries {
    uint8_t e[16][PEER_COMPACT_MAX];
    size_t n;
    size_t stride;
};

static void ent_add(struct entries *s, struct tracker_addr a, uint16_t port)
{
    size_t iplen = a.family == AF_INET6 ? 16 : 4;
    assert_true(s->n < 16);
    assert_true(s->stride == 0 || s->stride == iplen + 2);
    s->stride = iplen + 2;
    memcpy(s->e[s->n], a.ip, iplen);
    s->e[s->n][iplen] = (uint8_t)(port >> 8);
    s->e[s->n][iplen + 1] = (uint8_t)(port & 0xff);
    s->n++;
}

/* The answer is exactly: the sorted keys with these counts, the cfg's
 * intervals, `want` distinct entries of set (any order), and "e". */
static void assert_announce(const struct fx *f, int status, int64_t complete, int64_t downloaded,
                            struct tracker_addr ext, int64_t incomplete, const struct entries *set,
                            size_t want)
{
    bool v6 = ext.family == AF_INET6;
    size_t stride = v6 ? PEER_COMPACT_V6 : PEER_COMPACT_V4;
    assert_true(set == NULL || set->n == 0 || set->stride == stride);
    assert_true(want <= (set ? set->n : 0));
    struct exp e = {.len = 0};
    ex_fmt(&e, "d8:completei%llde10:downloadedi%llde11:external ip%d:", (long long)complete,
           (long long)downloaded, v6 ? 16 : 4);
    ex_raw(&e, ext.ip, v6 ? 16 : 4);
    ex_fmt(&e, "10:incompletei%llde8:intervali%ue12:min intervali%ue", (long long)incomplete,
           f->exp_interval, f->exp_min_interval);
    ex_fmt(&e, "%s%zu:", v6 ? "6:peers6" : "5:peers", want * stride);

    assert_int_equal(status, 200);
    if (f->len != e.len + want * stride + 1 || memcmp(f->body, e.p, e.len) != 0) {
        print_bytes("body", f->body, f->len);
        print_bytes("expected head", e.p, e.len);
        print_error("followed by %zu peers and 'e'\n", want);
    }
    assert_int_equal(f->len, e.len + want * stride + 1);
    assert_memory_equal(f->body, e.p, e.len);
    assert_int_equal(f->body[f->len - 1], 'e');
    bool used[16] = {false};
    for (size_t i = 0; i < want; i++) {
        const uint8_t *got = f->body + e.len + i * stride;
        size_t j = 0;
        while (j < set->n && memcmp(got, set->e[j], stride) != 0) {
            j++;
        }
        assert_true(j < set->n); /* an entry from outside the allowed set */
        assert_false(used[j]);   /* the same peer twice */
        used[j] = true;
    }
}

/* ---- swarm and ring inspection ---------------------------------------- */

struct swarm_state {
    bool found;
    uint32_t v4, v4_leech, v4_partial, v6, v6_leech, v6_partial, snatches;
};

static struct swarm_state swarm_of(struct fx *f, const uint8_t hash[20])
{
    struct swarm_state s;
    memset(&s, 0, sizeof(s));
    struct torrent_shard *shard;
    struct torrent *tor = torrents_lock(f->torrents, hash, &shard);
    if (tor) {
        s.found = true;
        s.v4 = tor->v4.n;
        s.v4_leech = tor->v4.nleech;
        s.v4_partial = tor->v4.npartial;
        s.v6 = tor->v6.n;
        s.v6_leech = tor->v6.nleech;
        s.v6_partial = tor->v6.npartial;
        s.snatches = tor->snatches;
    }
    torrents_unlock(shard);
    return s;
}

struct world {
    struct swarm_state s[6];
};

static struct world world_of(struct fx *f)
{
    const uint8_t *all[6] = {H1, H2, HDIS, HDEL, HDELNR, HNONE};
    struct world w;
    for (size_t i = 0; i < 6; i++) {
        w.s[i] = swarm_of(f, all[i]);
    }
    return w;
}

static void assert_world_equal(const struct world *a, const struct world *b)
{
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(a->s[i].found, b->s[i].found);
        assert_int_equal(a->s[i].v4, b->s[i].v4);
        assert_int_equal(a->s[i].v4_leech, b->s[i].v4_leech);
        assert_int_equal(a->s[i].v4_partial, b->s[i].v4_partial);
        assert_int_equal(a->s[i].v6, b->s[i].v6);
        assert_int_equal(a->s[i].v6_leech, b->s[i].v6_leech);
        assert_int_equal(a->s[i].v6_partial, b->s[i].v6_partial);
        assert_int_equal(a->s[i].snatches, b->s[i].snatches);
    }
}

/* Takes this turn's journal batch (what the worker would write before
 * answering) and returns the records that change the books (bytes or a
 * snatch); every announce also journals its peer's baseline, which
 * peer_records() checks. */
static size_t ring_take(struct fx *f, struct acct_delta *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < f->journal.nbatch; i++) {
        const struct journal_record *r = &f->journal.batch[i];
        if (!r->uploaded && !r->downloaded && !(r->flags & JOURNAL_SNATCH)) {
            continue;
        }
        assert_true(n < max);
        out[n++] = (struct acct_delta){.user_id = r->user_id, .torrent_id = r->torrent_id,
                                       .uploaded = r->uploaded, .downloaded = r->downloaded,
                                       .snatch = (r->flags & JOURNAL_SNATCH) != 0, .at = r->at};
    }
    f->journal.nbatch = 0;
    return n;
}

static void assert_ring_empty(struct fx *f)
{
    struct acct_delta d;
    assert_int_equal(ring_take(f, &d, 1), 0);
}

/* Pops exactly one delta and checks every field. */
static void assert_one_delta(struct fx *f, uint32_t user, uint32_t torrent, uint64_t up,
                             uint64_t down, bool snatch)
{
    struct acct_delta d[4];
    memset(d, 0, sizeof(d));
    assert_int_equal(ring_take(f, d, 4), 1);
    assert_int_equal(d[0].user_id, user);
    assert_int_equal(d[0].torrent_id, torrent);
    assert_int_equal(d[0].uploaded, up);
    assert_int_equal(d[0].downloaded, down);
    assert_int_equal(d[0].snatch, snatch);
    assert_in_range(d[0].at, f->t0, (int64_t)time(NULL));
}

static uint32_t fx_reap(struct fx *f)
{
    fx_start(f);
    uint32_t n = 0;
    for (uint32_t s = 0; s < torrents_nshards(f->torrents); s++) {
        n += tracker_reap_shard(&f->t, s);
    }
    return n;
}

/* Moves the tracker clock forward. */
static void fx_age(struct fx *f, time_t seconds)
{
    fx_start(f);
    f->t.frozen_now += (uint32_t)seconds;
}

/* Addresses used throughout. */
#define SA addr4(198, 51, 100, 1)
#define SB addr4(203, 0, 113, 5)
#define SC addr4(192, 0, 2, 3)
#define SD addr4(192, 0, 2, 4)
#define SE addr4(192, 0, 2, 5)
#define SF addr4(192, 0, 2, 6)

/* ---- the answer: keys, counts, compact peers --------------------------- */

static void fx_five_seeders(struct fx *f, struct entries *set);

static void test_first_v4_announce_is_sorted_dict_counting_itself(void **state)
{
    struct fx *f = *state;
    int st = fx_announce(f, (struct ann){.left = 1000}, SA);
    static const char want[] = "d8:completei0e10:downloadedi0e11:external ip4:\xc6\x33\x64\x01"
                               "10:incompletei1e8:intervali1800e12:min intervali900e"
                               "5:peers0:e";
    assert_int_equal(st, 200);
    assert_int_equal(f->len, sizeof(want) - 1);
    assert_memory_equal(f->body, want, sizeof(want) - 1);

    /* The same peer finishing: counts move from incomplete to complete. */
    st = fx_announce(f, (struct ann){.left = 0}, SA);
    static const char want2[] = "d8:completei1e10:downloadedi0e11:external ip4:\xc6\x33\x64\x01"
                                "10:incompletei0e8:intervali1800e12:min intervali900e"
                                "5:peers0:e";
    assert_int_equal(st, 200);
    assert_int_equal(f->len, sizeof(want2) - 1);
    assert_memory_equal(f->body, want2, sizeof(want2) - 1);
    struct swarm_state s = swarm_of(f, H1);
    assert_int_equal(s.v4, 1);
    assert_int_equal(s.v4_leech, 0);
}

static void test_interval_and_min_interval_come_from_cfg(void **state)
{
    struct fx *f = *state;
    f->cfg.interval = 1234;
    f->cfg.min_interval = 567;
    int st = fx_announce(f, (struct ann){.left = 0}, SA);
    static const char want[] = "d8:completei1e10:downloadedi0e11:external ip4:\xc6\x33\x64\x01"
                               "10:incompletei0e8:intervali1234e12:min intervali567e"
                               "5:peers0:e";
    assert_int_equal(st, 200);
    assert_int_equal(f->len, sizeof(want) - 1);
    assert_memory_equal(f->body, want, sizeof(want) - 1);
}

static void test_live_settings_change_the_next_answer(void **state)
{
    struct fx *f = *state;
    struct entries set = {.n = 0};
    fx_five_seeders(f, &set);
    struct mk_errbuf eb = {{0}};
    assert_int_equal(tracker_set_live(&f->t, 600, 300, 2, &eb), 0);
    f->exp_interval = 600;
    f->exp_min_interval = 300;
    int st = fx_announce(
        f, (struct ann){.peer_id = PF, .left = 1, .port = 3000, .extra = "&numwant=50"}, SF);
    assert_announce(f, st, 5, 0, SF, 1, &set, 2);
    static const char keys[] = "8:intervali600e12:min intervali300e";
    assert_non_null(memmem(f->body, f->len, keys, sizeof(keys) - 1));

    /* 0 keeps a value. */
    assert_int_equal(tracker_set_live(&f->t, 0, 0, 4, &eb), 0);
    st = fx_announce(
        f, (struct ann){.peer_id = PF, .left = 1, .port = 3000, .extra = "&numwant=50"}, SF);
    assert_announce(f, st, 5, 0, SF, 1, &set, 4);
}

static void test_live_settings_refuse_bad_values_and_keep_old_ones(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 0}, SA), 200);
    struct mk_errbuf eb = {{0}};
    assert_int_equal(tracker_set_live(&f->t, 900, 901, 0, &eb), MK_EINVAL);
    assert_string_equal(eb.msg, "min_interval: 901 is above interval 900");
    assert_int_equal(tracker_set_live(&f->t, 86401, 0, 0, &eb), MK_EINVAL);
    assert_string_equal(eb.msg, "interval: 86401 is above the maximum 86400");
    /* The answer buffer is sized for the configured cap. */
    assert_int_equal(tracker_set_live(&f->t, 0, 0, 101, &eb), MK_EINVAL);
    assert_string_equal(eb.msg,
                        "numwant_max: 101 is above the configured tracker.numwant_max 100");
    /* Lowering interval below the current min_interval is refused too. */
    assert_int_equal(tracker_set_live(&f->t, 899, 0, 0, &eb), MK_EINVAL);
    assert_string_equal(eb.msg, "min_interval: 900 is above interval 899");
    int st = fx_announce(f, (struct ann){.left = 0}, SA);
    assert_announce(f, st, 1, 0, SA, 0, NULL, 0);
    static const char keys[] = "8:intervali1800e12:min intervali900e";
    assert_non_null(memmem(f->body, f->len, keys, sizeof(keys) - 1));
}

static void test_v4_peer_entry_is_4_byte_address_then_big_endian_port(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 0, .port = 6881}, SA), 200);
    int st = fx_announce(f, (struct ann){.pk = "bob", .peer_id = PB, .left = 5, .port = 51413}, SB);
    /* 198.51.100.1:6881 = c6 33 64 01 1a e1; bob is 203.0.113.5 = cb 00 71 05. */
    static const char want[] = "d8:completei1e10:downloadedi0e11:external ip4:\xcb\x00\x71\x05"
                               "10:incompletei1e8:intervali1800e12:min intervali900e"
                               "5:peers6:\xc6\x33\x64\x01\x1a\xe1"
                               "e";
    assert_int_equal(st, 200);
    assert_int_equal(f->len, sizeof(want) - 1);
    assert_memory_equal(f->body, want, sizeof(want) - 1);

    /* And the seeder sees bob at 51413 = c8 d5. */
    st = fx_announce(f, (struct ann){.left = 0, .port = 6881}, SA);
    static const char want2[] = "d8:completei1e10:downloadedi0e11:external ip4:\xc6\x33\x64\x01"
                                "10:incompletei1e8:intervali1800e12:min intervali900e"
                                "5:peers6:\xcb\x00\x71\x05\xc8\xd5"
                                "e";
    assert_int_equal(st, 200);
    assert_int_equal(f->len, sizeof(want2) - 1);
    assert_memory_equal(f->body, want2, sizeof(want2) - 1);
}

static void test_v6_answer_is_peers6_with_18_byte_entries_and_16_byte_external_ip(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 0, .port = 6881}, addr6("2001:db8::1")),
                     200);
    int st = fx_announce(f, (struct ann){.pk = "bob", .peer_id = PB, .left = 9, .port = 256},
                         addr6("2001:db8::2"));
    static const char want[] =
        "d8:completei1e10:downloadedi0e11:external ip16:"
        "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02"
        "10:incompletei1e8:intervali1800e12:min intervali900e"
        "6:peers618:\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe1"
        "e";
    assert_int_equal(st, 200);
    assert_int_equal(f->len, sizeof(want) - 1);
    assert_memory_equal(f->body, want, sizeof(want) - 1);

    st = fx_announce(f, (struct ann){.left = 0, .port = 6881}, addr6("2001:db8::1"));
    static const char want2[] =
        "d8:completei1e10:downloadedi0e11:external ip16:"
        "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
        "10:incompletei1e8:intervali1800e12:min intervali900e"
        "6:peers618:\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x01\x00"
        "e";
    assert_int_equal(st, 200);
    assert_int_equal(f->len, sizeof(want2) - 1);
    assert_memory_equal(f->body, want2, sizeof(want2) - 1);
    struct swarm_state s = swarm_of(f, H1);
    assert_int_equal(s.v4, 0);
    assert_int_equal(s.v6, 2);
}

static void test_families_never_mix_but_counts_include_both(void **state)
{
    struct fx *f = *state;
    struct tracker_addr c6 = addr6("2001:db8::3"), d6 = addr6("2001:db8::4");
    assert_int_equal(fx_announce(f, (struct ann){.left = 0, .port = 1001}, SA), 200);
    assert_int_equal(fx_announce(f, (struct ann){.pk = "bob", .peer_id = PB, .left = 1, .port = 1002},
                                 SB),
                     200);
    assert_int_equal(
        fx_announce(f, (struct ann){.pk = "carol", .peer_id = PC, .left = 1, .port = 1003}, c6),
        200);

    /* A v4 leecher: the two v4 peers, never carol; counts see all four. */
    struct entries v4set = {.n = 0};
    ent_add(&v4set, SA, 1001);
    ent_add(&v4set, SB, 1002);
    int st = fx_announce(f, (struct ann){.pk = "dave", .peer_id = PD, .left = 1, .port = 1004}, SD);
    assert_announce(f, st, 1, 0, SD, 3, &v4set, 2);

    /* A v6 leecher: carol only, never the three v4 peers. */
    struct entries v6set = {.n = 0};
    ent_add(&v6set, c6, 1003);
    st = fx_announce(f, (struct ann){.pk = "dave", .peer_id = PE, .left = 1, .port = 1005}, d6);
    assert_announce(f, st, 1, 0, d6, 4, &v6set, 1);

    /* carol seeds: she gets the v6 leecher only. */
    struct entries v6leech = {.n = 0};
    ent_add(&v6leech, d6, 1005);
    st = fx_announce(f, (struct ann){.pk = "carol", .peer_id = PC, .left = 0, .port = 1003}, c6);
    assert_announce(f, st, 2, 0, c6, 3, &v6leech, 1);

    struct swarm_state s = swarm_of(f, H1);
    assert_int_equal(s.v4, 3);
    assert_int_equal(s.v4_leech, 2);
    assert_int_equal(s.v6, 2);
    assert_int_equal(s.v6_leech, 1);
}

/* ---- who sees whom ---------------------------------------------------- */

static void test_seeder_gets_only_leechers(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 0, .port = 1001}, SA), 200);
    assert_int_equal(
        fx_announce(f, (struct ann){.pk = "bob", .peer_id = PB, .left = 0, .port = 1002}, SB),
        200);
    assert_int_equal(
        fx_announce(f, (struct ann){.pk = "carol", .peer_id = PC, .left = 7, .port = 1003}, SC),
        200);
    assert_int_equal(
        fx_announce(f, (struct ann){.pk = "dave", .peer_id = PD, .left = 7, .port = 1004}, SD),
        200);
    struct entries leechers = {.n = 0};
    ent_add(&leechers, SC, 1003);
    ent_add(&leechers, SD, 1004);
    int st = fx_announce(f, (struct ann){.pk = "dave", .peer_id = PE, .left = 0, .port = 1005}, SE);
    assert_announce(f, st, 3, 0, SE, 2, &leechers, 2);

    /* A returning seeder, too, never sees seeders. */
    st = fx_announce(f, (struct ann){.left = 0, .port = 1001}, SA);
    assert_announce(f, st, 3, 0, SA, 2, &leechers, 2);
}

static void test_seeder_with_no_leechers_gets_no_peers(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 0, .port = 1001}, SA), 200);
    int st = fx_announce(f, (struct ann){.pk = "bob", .peer_id = PB, .left = 0, .port = 1002}, SB);
    assert_announce(f, st, 2, 0, SB, 0, NULL, 0);
}

static void test_leecher_gets_everyone_else_never_itself(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 0, .port = 1001}, SA), 200);
    assert_int_equal(
        fx_announce(f, (struct ann){.pk = "bob", .peer_id = PB, .left = 3, .port = 1002}, SB),
        200);
    struct entries others = {.n = 0};
    ent_add(&others, SA, 1001);
    ent_add(&others, SB, 1002);
    int st = fx_announce(f, (struct ann){.pk = "carol", .peer_id = PC, .left = 3, .port = 1003}, SC);
    assert_announce(f, st, 1, 0, SC, 2, &others, 2);

    /* bob again: alice and carol, not bob. */
    struct entries not_bob = {.n = 0};
    ent_add(&not_bob, SA, 1001);
    ent_add(&not_bob, SC, 1003);
    for (int i = 0; i < 5; i++) {
        st = fx_announce(f, (struct ann){.pk = "bob", .peer_id = PB, .left = 3, .port = 1002}, SB);
        assert_announce(f, st, 1, 0, SB, 2, &not_bob, 2);
    }
}

static void test_same_peer_id_under_another_user_is_another_peer(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.peer_id = PA, .left = 3, .port = 1001}, SA), 200);
    struct entries alice = {.n = 0};
    ent_add(&alice, SA, 1001);
    int st = fx_announce(f, (struct ann){.pk = "bob", .peer_id = PA, .left = 3, .port = 1002}, SB);
    assert_announce(f, st, 0, 0, SB, 2, &alice, 1);
}

/* Five other peers, all seeders, so a leecher may get any of them. */
static void fx_five_seeders(struct fx *f, struct entries *set)
{
    const char *pids[5] = {PA, PB, PC, PD, PE};
    struct tracker_addr srcs[5] = {SA, SB, SC, SD, SE};
    for (int i = 0; i < 5; i++) {
        uint16_t port = (uint16_t)(2000 + i);
        assert_int_equal(
            fx_announce(f, (struct ann){.pk = "bob", .peer_id = pids[i], .left = 0, .port = port},
                        srcs[i]),
            200);
        ent_add(set, srcs[i], port);
    }
}

static void test_numwant_absent_uses_numwant_default(void **state)
{
    struct fx *f = *state;
    f->cfg.numwant_default = 2;
    struct entries set = {.n = 0};
    fx_five_seeders(f, &set);
    int st = fx_announce(f, (struct ann){.peer_id = PF, .left = 1, .port = 3000}, SF);
    assert_announce(f, st, 5, 0, SF, 1, &set, 2);
    /* An explicit numwant overrides the default. */
    st = fx_announce(f, (struct ann){.peer_id = PF, .left = 1, .port = 3000, .extra = "&numwant=4"},
                     SF);
    assert_announce(f, st, 5, 0, SF, 1, &set, 4);
    st = fx_announce(f, (struct ann){.peer_id = PF, .left = 1, .port = 3000, .extra = "&numwant=1"},
                     SF);
    assert_announce(f, st, 5, 0, SF, 1, &set, 1);
}

static void test_numwant_is_capped_at_numwant_max(void **state)
{
    struct fx *f = *state;
    f->cfg.numwant_max = 3;
    struct entries set = {.n = 0};
    fx_five_seeders(f, &set);
    int st = fx_announce(
        f, (struct ann){.peer_id = PF, .left = 1, .port = 3000, .extra = "&numwant=50"}, SF);
    assert_announce(f, st, 5, 0, SF, 1, &set, 3);
    st = fx_announce(
        f, (struct ann){.peer_id = PF, .left = 1, .port = 3000, .extra = "&numwant=99999999999"},
        SF);
    assert_announce(f, st, 5, 0, SF, 1, &set, 3);
    /* The default itself is capped too. */
    f->cfg.numwant_default = 30;
    st = fx_announce(f, (struct ann){.peer_id = PF, .left = 1, .port = 3000}, SF);
    assert_announce(f, st, 5, 0, SF, 1, &set, 3);
}

static void test_numwant_more_than_candidates_gets_all_candidates(void **state)
{
    struct fx *f = *state;
    struct entries set = {.n = 0};
    fx_five_seeders(f, &set);
    int st = fx_announce(
        f, (struct ann){.peer_id = PF, .left = 1, .port = 3000, .extra = "&numwant=100"}, SF);
    assert_announce(f, st, 5, 0, SF, 1, &set, 5);
}

static void test_numwant_zero_answers_no_peers_but_joins_swarm(void **state)
{
    struct fx *f = *state;
    struct entries set = {.n = 0};
    fx_five_seeders(f, &set);
    int st = fx_announce(
        f, (struct ann){.peer_id = PF, .left = 1, .port = 3000, .extra = "&numwant=0"}, SF);
    assert_announce(f, st, 5, 0, SF, 1, NULL, 0);
    assert_int_equal(swarm_of(f, H1).v4, 6);
}

static void test_reannounce_from_new_address_replaces_the_old_one(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 0, .port = 1001}, SA), 200);
    assert_int_equal(fx_announce(f, (struct ann){.left = 0, .port = 1009}, SE), 200);
    struct entries moved = {.n = 0};
    ent_add(&moved, SE, 1009);
    int st = fx_announce(f, (struct ann){.pk = "bob", .peer_id = PB, .left = 1, .port = 1002}, SB);
    assert_announce(f, st, 1, 0, SB, 1, &moved, 1);
}

/* ---- events ----------------------------------------------------------- */

static void test_stopped_removes_peer_and_answers_empty_peers(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 0, .port = 1001}, SA), 200);
    assert_int_equal(
        fx_announce(f, (struct ann){.pk = "bob", .peer_id = PB, .left = 3, .port = 1002}, SB),
        200);
    int st = fx_announce(
        f, (struct ann){.pk = "bob", .peer_id = PB, .left = 3, .port = 1002, .event = "stopped"},
        SB);
    static const char want[] = "d8:completei1e10:downloadedi0e11:external ip4:\xcb\x00\x71\x05"
                               "10:incompletei0e8:intervali1800e12:min intervali900e"
                               "5:peers0:e";
    assert_int_equal(st, 200);
    assert_int_equal(f->len, sizeof(want) - 1);
    assert_memory_equal(f->body, want, sizeof(want) - 1);
    struct swarm_state s = swarm_of(f, H1);
    assert_int_equal(s.v4, 1);
    assert_int_equal(s.v4_leech, 0);

    /* A newcomer no longer sees bob. */
    struct entries alice = {.n = 0};
    ent_add(&alice, SA, 1001);
    st = fx_announce(f, (struct ann){.pk = "carol", .peer_id = PC, .left = 3, .port = 1003}, SC);
    assert_announce(f, st, 1, 0, SC, 1, &alice, 1);

    /* A stopping seeder with leechers around still gets no peers. */
    st = fx_announce(f, (struct ann){.left = 0, .port = 1001, .event = "stopped"}, SA);
    assert_announce(f, st, 0, 0, SA, 1, NULL, 0);
    assert_int_equal(swarm_of(f, H1).v4, 1);
}

static void test_stopped_from_unknown_peer_changes_nothing(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 0, .port = 1001}, SA), 200);
    struct world before = world_of(f);
    int st = fx_announce(f,
                         (struct ann){.pk = "bob", .peer_id = PB, .left = 3, .up = 500,
                                      .down = 700, .event = "stopped"},
                         SB);
    assert_announce(f, st, 1, 0, SB, 0, NULL, 0);
    struct world after = world_of(f);
    assert_world_equal(&before, &after);
    assert_ring_empty(f);
}

static void test_completed_counts_once_per_user_and_pushes_one_snatch(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 10, .event = "started"}, SA), 200);
    assert_ring_empty(f);

    int st = fx_announce(f, (struct ann){.left = 0, .event = "completed"}, SA);
    assert_announce(f, st, 1, 1, SA, 0, NULL, 0);
    assert_one_delta(f, ALICE, T1, 0, 0, true);

    /* The same client again, and alice from a second client: still one. */
    st = fx_announce(f, (struct ann){.left = 0, .event = "completed"}, SA);
    assert_announce(f, st, 1, 1, SA, 0, NULL, 0);
    assert_ring_empty(f);
    st = fx_announce(f, (struct ann){.peer_id = PB, .port = 1002, .left = 0, .event = "completed"},
                     SB);
    assert_announce(f, st, 2, 1, SB, 0, NULL, 0);
    assert_ring_empty(f);

    /* bob's first announce is a completion: it counts. */
    st = fx_announce(
        f, (struct ann){.pk = "bob", .peer_id = PC, .port = 1003, .left = 0, .event = "completed"},
        SC);
    assert_announce(f, st, 3, 2, SC, 0, NULL, 0);
    assert_one_delta(f, BOB, T1, 0, 0, true);
    assert_int_equal(swarm_of(f, H1).snatches, 2);
    assert_int_equal(swarm_of(f, H2).snatches, 0);
}

static void test_completed_with_counters_carries_delta_and_snatch_together(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 10, .up = 100, .down = 200}, SA), 200);
    assert_ring_empty(f);
    int st = fx_announce(f, (struct ann){.left = 0, .up = 150, .down = 210, .event = "completed"},
                         SA);
    assert_announce(f, st, 1, 1, SA, 0, NULL, 0);
    assert_one_delta(f, ALICE, T1, 50, 10, true);
}

/* ---- accounting deltas ------------------------------------------------ */

/* A full batch is written out early; when the journal cannot be written,
 * the announce is refused rather than answered without its books. */
static void test_unwritable_journal_refuses_the_announce(void **state)
{
    struct fx *f = *state;
    f->journal.batch_max = 1;
    assert_int_equal(fx_announce(f, (struct ann){.left = 10, .up = 0}, SA), 200);
    /* The full batch is written out early, to a new segment. */
    assert_int_equal(fx_announce(f, (struct ann){.left = 10, .up = 10}, SA), 200);
    assert_int_equal(f->journal.nbatch, 1);
    /* Now the disk goes away: the segment is closed and its directory gone. */
    char moved[80];
    snprintf(moved, sizeof(moved), "%s.gone", f->jdir);
    close(f->journal.fd);
    f->journal.fd = -1;
    assert_int_equal(rename(f->jdir, moved), 0);
    int st = fx_announce(f, (struct ann){.left = 10, .up = 30}, SA);
    assert_failure(f, st, "tracker cannot record this announce now, try again later");
    /* The batch that could not be written is kept for the retry. */
    assert_one_delta(f, ALICE, T1, 10, 0, false);
    assert_int_equal(rename(moved, f->jdir), 0);
    char seg[160];
    snprintf(seg, sizeof(seg), "%s/%016x-w0-%016d.open", f->jdir, 1, 1);
    assert_int_equal(unlink(seg), 0);
}

static void test_first_announce_credits_nothing(void **state)
{
    struct fx *f = *state;
    int st = fx_announce(
        f, (struct ann){.left = 10, .up = 5000, .down = 7000, .event = "started"}, SA);
    assert_announce(f, st, 0, 0, SA, 1, NULL, 0);
    assert_ring_empty(f);
}

static void test_increasing_reports_push_exact_differences(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 10, .up = 5000, .down = 7000}, SA), 200);
    assert_ring_empty(f);
    assert_int_equal(fx_announce(f, (struct ann){.left = 10, .up = 6000, .down = 7500}, SA), 200);
    assert_one_delta(f, ALICE, T1, 1000, 500, false);
    assert_int_equal(fx_announce(f, (struct ann){.left = 10, .up = 6000, .down = 9000}, SA), 200);
    assert_one_delta(f, ALICE, T1, 0, 1500, false);
    /* Large counters: up to 2^63-1 are accepted and subtracted exactly. */
    assert_int_equal(
        fx_announce(f, (struct ann){.left = 10, .up = 9223372036854775807ull, .down = 9000}, SA),
        200);
    assert_one_delta(f, ALICE, T1, 9223372036854775807ull - 6000, 0, false);
    /* Another user on another torrent is credited on its own. */
    assert_int_equal(
        fx_announce(f, (struct ann){.pk = "bob", .peer_id = PB, .hash = H2, .left = 1, .up = 1},
                    SB),
        200);
    assert_int_equal(
        fx_announce(f, (struct ann){.pk = "bob", .peer_id = PB, .hash = H2, .left = 1, .up = 4},
                    SB),
        200);
    assert_one_delta(f, BOB, T2, 3, 0, false);
}

static void test_lower_report_pushes_new_value_as_delta(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 10, .up = 6000, .down = 7000}, SA), 200);
    assert_ring_empty(f);
    /* A restarted client session: uploaded restarted at 0 and is now 200. */
    assert_int_equal(fx_announce(f, (struct ann){.left = 10, .up = 200, .down = 7000}, SA), 200);
    assert_one_delta(f, ALICE, T1, 200, 0, false);
    assert_int_equal(fx_announce(f, (struct ann){.left = 10, .up = 300, .down = 50}, SA), 200);
    assert_one_delta(f, ALICE, T1, 100, 50, false);
    /* Lowered to zero: nothing new, nothing pushed. */
    assert_int_equal(fx_announce(f, (struct ann){.left = 10, .up = 0, .down = 0}, SA), 200);
    assert_ring_empty(f);
}

static void test_unchanged_report_pushes_nothing(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 10, .up = 100, .down = 100}, SA), 200);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fx_announce(f, (struct ann){.left = 10, .up = 100, .down = 100}, SA),
                         200);
        assert_ring_empty(f);
    }
}

static void test_stopped_pushes_the_last_difference(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 10, .up = 100, .down = 100}, SA), 200);
    assert_int_equal(
        fx_announce(f, (struct ann){.left = 10, .up = 180, .down = 130, .event = "stopped"}, SA),
        200);
    assert_one_delta(f, ALICE, T1, 80, 30, false);
    /* Gone: the next announce has no baseline and is credited nothing. */
    assert_int_equal(fx_announce(f, (struct ann){.left = 10, .up = 500, .down = 500}, SA), 200);
    assert_ring_empty(f);
}

/* ---- refusals and their order ----------------------------------------- */

/* Puts a leecher in H1 and H2 so refusals have something to leave alone. */
static struct world fx_populated(struct fx *f)
{
    assert_int_equal(fx_announce(f, (struct ann){.left = 10, .up = 1, .down = 1}, SA), 200);
    assert_int_equal(
        fx_announce(f, (struct ann){.hash = H2, .left = 0, .up = 1, .down = 1}, SA), 200);
    assert_ring_empty(f);
    return world_of(f);
}

static void assert_unchanged(struct fx *f, const struct world *before)
{
    struct world now = world_of(f);
    assert_world_equal(before, &now);
    assert_ring_empty(f);
}

static void test_unknown_passkey_is_refused(void **state)
{
    struct fx *f = *state;
    struct world w = fx_populated(f);
    const char *bad[] = {"nobody", "al-ice", "alice%20", "ALICE",
                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int st = fx_announce(f, (struct ann){.pk = bad[i], .left = 10, .up = 99}, SA);
        assert_failure(f, st, "unknown passkey");
    }
    /* An empty passkey. */
    char ih[61] = {0}, pi[61] = {0};
    pct(ih, H1, 20);
    pct(pi, PA, 20);
    char target[512];
    snprintf(target, sizeof(target),
             "//announce?info_hash=%s&peer_id=%s&port=1&uploaded=0&downloaded=0&left=0", ih, pi);
    assert_failure(f, fx_get(f, target, NULL, SA), "unknown passkey");
    assert_unchanged(f, &w);
}

/* The users table takes any bytes as a passkey; the tracker itself refuses
 * anything but [A-Za-z0-9] before looking it up. */
static void test_passkey_with_other_characters_is_unknown_even_if_stored(void **state)
{
    struct fx *f = *state;
    fx_user(f, 80, "al-ice", true, true);
    fx_user(f, 81, "al_ice", true, true);
    fx_user(f, 82, "al.ice", true, true);
    assert_failure(f, fx_announce(f, (struct ann){.pk = "al-ice", .left = 0}, SA),
                   "unknown passkey");
    assert_failure(f, fx_announce(f, (struct ann){.pk = "al_ice", .left = 0}, SA),
                   "unknown passkey");
    assert_failure(f, fx_announce(f, (struct ann){.pk = "al.ice", .left = 0}, SA),
                   "unknown passkey");
    assert_int_equal(swarm_of(f, H1).v4, 0);
}

static void test_64_char_passkey_is_looked_up(void **state)
{
    struct fx *f = *state;
    const char *pk64 = "k234567890123456789012345678901234567890123456789012345678901234";
    assert_int_equal(strlen(pk64), 64);
    fx_user(f, 77, pk64, true, true);
    int st = fx_announce(f, (struct ann){.pk = pk64, .left = 0}, SA);
    assert_announce(f, st, 1, 0, SA, 0, NULL, 0);
}

static void test_disabled_account_is_refused(void **state)
{
    struct fx *f = *state;
    struct world w = fx_populated(f);
    int st = fx_announce(f, (struct ann){.pk = "frozen", .peer_id = PB, .left = 0}, SB);
    assert_failure(f, st, "account disabled");
    /* Also for scrape. */
    const uint8_t *hs[1] = {H1};
    assert_failure(f, fx_scrape(f, "frozen", hs, 1), "account disabled");
    assert_unchanged(f, &w);
}

static void test_unknown_passkey_is_checked_before_parameters(void **state)
{
    struct fx *f = *state;
    struct world w = fx_populated(f);
    assert_failure(f, fx_get(f, "/nobody/announce?port=0", NULL, SA), "unknown passkey");
    assert_failure(f, fx_get(f, "/nobody/announce", NULL, SA), "unknown passkey");
    assert_failure(f, fx_get(f, "/frozen/announce?port=0", NULL, SA), "account disabled");
    assert_unchanged(f, &w);
}

static void test_bad_parameter_names_the_key(void **state)
{
    struct fx *f = *state;
    struct world w = fx_populated(f);
    assert_failure(f, fx_get(f, "/alice/announce", NULL, SA), "info_hash: missing");
    assert_failure(f, fx_announce(f, (struct ann){.left = 1, .extra = "&event=bogus"}, SA),
                   "event: unknown value");
    assert_failure(f, fx_announce(f, (struct ann){.left = 1, .extra = "&left=3"}, SA),
                   "left: given twice");
    assert_failure(f, fx_announce(f, (struct ann){.left = 1, .extra = "&numwant=x"}, SA),
                   "numwant: not a number");
    assert_unchanged(f, &w);
}

static void test_bad_parameter_is_checked_before_whitelist(void **state)
{
    struct fx *f = *state;
    struct world w = fx_populated(f);
    /* Not whitelisted and port=0 (the builder's 0 means 6881, so spell it). */
    char ih[61] = {0}, pi[61] = {0};
    pct(ih, H1, 20);
    pct(pi, PX, 20);
    char target[512];
    snprintf(target, sizeof(target),
             "/alice/announce?info_hash=%s&peer_id=%s&port=0&uploaded=0&downloaded=0&left=0", ih,
             pi);
    assert_failure(f, fx_get(f, target, NULL, SA), "port: must be between 1 and 65535");
    assert_unchanged(f, &w);
}

static void test_whitelist_is_checked_before_torrent(void **state)
{
    struct fx *f = *state;
    struct world w = fx_populated(f);
    const uint8_t *hashes[] = {H1, HNONE, HDIS, HDEL};
    for (size_t i = 0; i < 4; i++) {
        int st = fx_announce(f, (struct ann){.peer_id = PX, .hash = hashes[i], .left = 1}, SA);
        assert_failure(f, st, "client not whitelisted");
    }
    /* Also for a peer already in the swarm asking to stop. */
    assert_failure(f, fx_announce(f, (struct ann){.peer_id = PX, .event = "stopped"}, SA),
                   "client not whitelisted");
    assert_unchanged(f, &w);
}

static void test_whitelist_off_accepts_any_client(void **state)
{
    struct fx *f = *state;
    f->cfg.whitelist = false;
    int st = fx_announce(f, (struct ann){.peer_id = PX, .left = 1}, SA);
    assert_announce(f, st, 0, 0, SA, 1, NULL, 0);
}

static void test_switched_off_family_is_checked_after_whitelist_before_torrent(void **state)
{
    struct fx *f = *state;
    struct world w = fx_populated(f);
    f->cfg.ipv4 = false;
    assert_failure(f, fx_announce(f, (struct ann){.peer_id = PX, .hash = HNONE}, SA),
                   "client not whitelisted");
    assert_failure(f, fx_announce(f, (struct ann){.hash = HNONE}, SA),
                   "IPv4 is not served by this tracker");
    f->cfg.ipv4 = true;
    f->cfg.ipv6 = false;
    assert_failure(f, fx_announce(f, (struct ann){.hash = HNONE}, addr6("2001:db8::1")),
                   "IPv6 is not served by this tracker");
    assert_unchanged(f, &w);
}

static void test_unregistered_torrent_is_refused(void **state)
{
    struct fx *f = *state;
    struct world w = fx_populated(f);
    assert_failure(f, fx_announce(f, (struct ann){.hash = HNONE, .left = 0}, SA),
                   "unregistered torrent");
    assert_failure(f, fx_announce(f, (struct ann){.hash = HDELNR, .left = 0}, SA),
                   "unregistered torrent");
    assert_failure(f, fx_announce(f, (struct ann){.hash = HDEL, .left = 0}, SA),
                   "unregistered torrent: duplicate of 101");
    assert_unchanged(f, &w);
}

/* With a resolver, a key not in memory parks the request: nothing written,
 * nothing counted, the key named; the lookup's answer then decides. The
 * resolver itself is never called by tracker.c, so any non-NULL pointer
 * stands in for it here. */
static void fx_with_resolver(struct fx *f)
{
    fx_start(f);
    f->t.resolver = (struct resolver *)(void *)f;
}

static void test_unknown_passkey_parks_then_gets_the_lookups_answer(void **state)
{
    struct fx *f = *state;
    fx_with_resolver(f);
    struct tracker_stats before, after;
    tracker_stats_read(&f->t, &before);
    int st = fx_announce(f, (struct ann){.pk = "newcomer", .left = 10}, SA);
    assert_int_equal(st, TRACKER_PARKED);
    assert_int_equal(f->len, 0);
    assert_int_equal(f->l.miss.kind, MISS_PASSKEY);
    assert_int_equal(f->l.miss.len, 8);
    assert_memory_equal(f->l.miss.bytes, "newcomer", 8);
    tracker_stats_read(&f->t, &after);
    assert_int_equal(after.announces, before.announces);
    /* The store said no, or found a row that is still not here. */
    f->l.lookup[MISS_PASSKEY] = MK_ENOTFOUND;
    assert_failure(f, fx_announce(f, (struct ann){.pk = "newcomer", .left = 10}, SA),
                   "unknown passkey");
    f->l.lookup[MISS_PASSKEY] = MK_OK;
    assert_failure(f, fx_announce(f, (struct ann){.pk = "newcomer", .left = 10}, SA),
                   "unknown passkey");
    /* The store could not be asked: nothing is refused for good. */
    f->l.lookup[MISS_PASSKEY] = MK_EUNAVAIL;
    assert_failure(f, fx_announce(f, (struct ann){.pk = "newcomer", .left = 10}, SA),
                   "tracker cannot look this up now, try again later");
    f->l.lookup[MISS_PASSKEY] = MK_ELIMIT;
    assert_failure(f, fx_announce(f, (struct ann){.pk = "newcomer", .left = 10}, SA),
                   "tracker cannot look this up now, try again later");
    tracker_stats_read(&f->t, &after);
    assert_string_equal(tracker_failure_label(11), "lookup_unavailable");
    assert_int_equal(after.failures[11], before.failures[11] + 2);
    /* A malformed passkey is never looked up. */
    f->l.lookup[MISS_PASSKEY] = TRACKER_LOOKUP_NONE;
    assert_failure(f, fx_announce(f, (struct ann){.pk = "al-ice", .left = 10}, SA),
                   "unknown passkey");
}

static void test_unknown_info_hash_parks_then_gets_the_lookups_answer(void **state)
{
    struct fx *f = *state;
    fx_with_resolver(f);
    assert_int_equal(fx_announce(f, (struct ann){.hash = HNONE, .left = 0}, SA), TRACKER_PARKED);
    assert_int_equal(f->l.miss.kind, MISS_INFO_HASH);
    assert_int_equal(f->l.miss.len, 20);
    assert_memory_equal(f->l.miss.bytes, HNONE, 20);
    f->l.lookup[MISS_INFO_HASH] = MK_ENOTFOUND;
    assert_failure(f, fx_announce(f, (struct ann){.hash = HNONE, .left = 0}, SA),
                   "unregistered torrent");
    f->l.lookup[MISS_INFO_HASH] = MK_EUNAVAIL;
    assert_failure(f, fx_announce(f, (struct ann){.hash = HNONE, .left = 0}, SA),
                   "tracker cannot look this up now, try again later");
    /* A deleted torrent in memory is no miss. */
    f->l.lookup[MISS_INFO_HASH] = TRACKER_LOOKUP_NONE;
    assert_failure(f, fx_announce(f, (struct ann){.hash = HDEL, .left = 0}, SA),
                   "unregistered torrent: duplicate of 101");
    /* Found by the lookup: served like any other. */
    fx_torrent(f, 106, HNONE, true, false, "");
    f->l.lookup[MISS_INFO_HASH] = MK_OK;
    assert_int_equal(fx_announce(f, (struct ann){.hash = HNONE, .left = 0}, SA), 200);
    assert_null(memmem(f->body, f->len, "failure", 7));
}

static void test_unregistered_is_checked_before_download_rights(void **state)
{
    struct fx *f = *state;
    struct world w = fx_populated(f);
    assert_failure(f, fx_announce(f, (struct ann){.pk = "seedonly", .hash = HNONE, .left = 5}, SA),
                   "unregistered torrent");
    assert_failure(f, fx_announce(f, (struct ann){.pk = "seedonly", .hash = HDEL, .left = 5}, SA),
                   "unregistered torrent: duplicate of 101");
    assert_unchanged(f, &w);
}

static void test_disabled_torrent_is_refused_before_download_rights(void **state)
{
    struct fx *f = *state;
    struct world w = fx_populated(f);
    assert_failure(f, fx_announce(f, (struct ann){.hash = HDIS, .left = 0}, SA),
                   "torrent disabled");
    assert_failure(f, fx_announce(f, (struct ann){.pk = "seedonly", .hash = HDIS, .left = 5}, SA),
                   "torrent disabled");
    assert_unchanged(f, &w);
}

static void test_no_download_right_refuses_only_when_left_is_positive(void **state)
{
    struct fx *f = *state;
    struct world w = fx_populated(f);
    assert_failure(f, fx_announce(f, (struct ann){.pk = "seedonly", .peer_id = PB, .left = 1}, SB),
                   "downloading not allowed for this account");
    assert_unchanged(f, &w);
    /* Seeding stays allowed. */
    int st = fx_announce(f, (struct ann){.pk = "seedonly", .peer_id = PB, .left = 0}, SB);
    struct entries alice = {.n = 0};
    ent_add(&alice, SA, 6881);
    assert_announce(f, st, 1, 0, SB, 1, &alice, 1);
}

/* Every answered announce journals the peer's report as its new baseline
 * (so a restart can restore it); stopped journals its departure; a refused
 * announce journals nothing. */
static void test_every_announce_journals_the_peer_baseline(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 5, .up = 70, .down = 30}, SA), 200);
    assert_int_equal(f->journal.nbatch, 1);
    const struct journal_record *r = &f->journal.batch[0];
    assert_int_equal(r->flags & (JOURNAL_PEER | JOURNAL_PEER_GONE | JOURNAL_SEEDER), JOURNAL_PEER);
    assert_int_equal(r->uploaded, 0); /* first report: no delta */
    assert_int_equal(r->reported_up, 70);
    assert_int_equal(r->reported_down, 30);
    assert_int_equal(r->family, 4);
    assert_int_equal(r->port, 6881);
    assert_memory_equal(r->peer_id, PA, 20);
    assert_memory_equal(r->ip, SA.ip, 4);
    assert_int_equal(r->torrent_id, T1);
    f->journal.nbatch = 0;
    assert_failure(f, fx_announce(f, (struct ann){.pk = "nobody", .left = 5}, SA),
                   "unknown passkey");
    assert_int_equal(f->journal.nbatch, 0);
    assert_int_equal(fx_announce(f, (struct ann){.left = 0, .up = 90, .event = "stopped"}, SA),
                     200);
    assert_int_equal(f->journal.nbatch, 1);
    r = &f->journal.batch[0];
    assert_int_equal(r->flags & (JOURNAL_PEER | JOURNAL_PEER_GONE),
                     JOURNAL_PEER | JOURNAL_PEER_GONE);
    assert_int_equal(r->uploaded, 20);
    f->journal.nbatch = 0;
}

/* The books' record carries what was credited after every multiplier:
 * torrent (freeleech zeroes downloads), class, personal, and a site-wide
 * event while it lasts. */
static void test_credit_applies_every_multiplier(void **state)
{
    struct fx *f = *state;
    struct torrent_row tr;
    memset(&tr, 0, sizeof(tr));
    tr.id = T1;
    memcpy(tr.info_hash, H1, 20);
    tr.enabled = true;
    tr.has_mults = true;
    tr.up_mult = 2000; /* double upload */
    tr.down_mult = 1000;
    assert_int_equal(torrents_put(f->torrents, &tr, 1), 0);
    struct user_row ur;
    memset(&ur, 0, sizeof(ur));
    ur.id = ALICE;
    snprintf(ur.passkey, sizeof(ur.passkey), "alice");
    ur.enabled = ur.can_download = true;
    ur.has_mults = true;
    ur.class_up = 1500;
    ur.class_down = 500;
    ur.personal_up = 1000;
    ur.personal_down = 1000;
    assert_int_equal(users_put(f->users, &ur, 1), 0);

    assert_int_equal(fx_announce(f, (struct ann){.left = 5}, SA), 200);
    f->journal.nbatch = 0;
    assert_int_equal(fx_announce(f, (struct ann){.left = 5, .up = 1000, .down = 1000}, SA), 200);
    assert_int_equal(f->journal.nbatch, 1);
    const struct journal_record *r = &f->journal.batch[0];
    assert_true(r->flags & JOURNAL_CREDITED);
    assert_int_equal(r->uploaded, 1000);       /* raw stays raw */
    assert_int_equal(r->credited_up, 3000);    /* 1000 x 2 x 1.5 */
    assert_int_equal(r->credited_down, 500);   /* 1000 x 1 x 0.5 */
    f->journal.nbatch = 0;

    /* A freeleech event in force: downloads count 0; once it ended, 1x again. */
    tracker_set_event(&f->t, 1000, 0, (int64_t)time(NULL) + 3600);
    assert_int_equal(fx_announce(f, (struct ann){.left = 5, .up = 2000, .down = 2000}, SA), 200);
    r = &f->journal.batch[0];
    assert_int_equal(r->credited_up, 3000);
    assert_int_equal(r->credited_down, 0);
    f->journal.nbatch = 0;
    tracker_set_event(&f->t, 1000, 0, (int64_t)time(NULL) - 1);
    assert_int_equal(fx_announce(f, (struct ann){.left = 5, .up = 3000, .down = 3000}, SA), 200);
    r = &f->journal.batch[0];
    assert_int_equal(r->credited_down, 500);
    f->journal.nbatch = 0;

    /* A freeleech torrent: downloads count 0 whatever else applies. */
    tr.freeleech = true;
    assert_int_equal(torrents_put(f->torrents, &tr, 1), 0);
    assert_int_equal(fx_announce(f, (struct ann){.left = 5, .up = 4000, .down = 4000}, SA), 200);
    r = &f->journal.batch[0];
    assert_int_equal(r->credited_up, 3000);
    assert_int_equal(r->credited_down, 0);
    f->journal.nbatch = 0;
}

/* Time since the previous announce is booked as seeding or leeching by what
 * the peer was then (capped at interval x expiry_factor), and seeding earns
 * bonus points by the [bonus] formula: 1 point per hour by default. */
static void test_seed_time_and_bonus_points_are_booked(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 5}, SA), 200);
    f->journal.nbatch = 0;
    fx_age(f, 600); /* ten minutes pass */
    assert_int_equal(fx_announce(f, (struct ann){.left = 0, .event = "completed"}, SA), 200);
    const struct journal_record *r = &f->journal.batch[0];
    assert_int_equal(r->leech_seconds, 600); /* it was leeching until now */
    assert_int_equal(r->seed_seconds, 0);
    assert_int_equal(r->bonus, 0);
    f->journal.nbatch = 0;
    fx_age(f, 1800); /* half an hour seeding */
    assert_int_equal(fx_announce(f, (struct ann){.left = 0}, SA), 200);
    r = &f->journal.batch[0];
    assert_int_equal(r->seed_seconds, 1800);
    assert_int_equal(r->leech_seconds, 0);
    assert_int_equal(r->bonus, ACCT_POINT / 2);
    f->journal.nbatch = 0;
    /* Away longer than interval x expiry_factor: the cap, not the gap. */
    uint32_t cap = f->cfg.interval * f->cfg.expiry_factor;
    fx_age(f, (time_t)cap * 3);
    assert_int_equal(fx_announce(f, (struct ann){.left = 0}, SA), 200);
    r = &f->journal.batch[0];
    assert_int_equal(r->seed_seconds, cap);
    f->journal.nbatch = 0;
}

/* Too good to be true: an upload into a swarm where no leecher was seen
 * since the uploader's previous announce, or faster than max_upload_mibps, is
 * booked raw, not credited, and journaled as suspicious. */
static void test_suspicious_uploads_are_not_credited(void **state)
{
    struct fx *f = *state;
    /* A lone seeder "uploads": nobody could have received it. */
    assert_int_equal(fx_announce(f, (struct ann){.left = 0}, SA), 200);
    f->journal.nbatch = 0;
    fx_age(f, 60);
    assert_int_equal(fx_announce(f, (struct ann){.left = 0, .up = 5000}, SA), 200);
    const struct journal_record *r = &f->journal.batch[0];
    assert_int_equal(r->uploaded, 5000);
    assert_int_equal(r->credited_up, 0);
    assert_int_equal((r->flags >> JOURNAL_SUSPICIOUS_SHIFT) & 3, ACCT_SUSPICIOUS_NO_LEECHERS);
    f->journal.nbatch = 0;
    /* A leecher arrives and leaves between the seeder's announces: fine. */
    assert_int_equal(fx_announce(f, (struct ann){.pk = "bob", .peer_id = PB, .left = 9}, SB), 200);
    assert_int_equal(
        fx_announce(f, (struct ann){.pk = "bob", .peer_id = PB, .left = 9, .event = "stopped"},
                    SB),
        200);
    f->journal.nbatch = 0;
    fx_age(f, 60);
    assert_int_equal(fx_announce(f, (struct ann){.left = 0, .up = 9000}, SA), 200);
    r = &f->journal.batch[0];
    assert_int_equal(r->credited_up, 4000);
    assert_int_equal((r->flags >> JOURNAL_SUSPICIOUS_SHIFT) & 3, ACCT_SUSPICIOUS_NONE);
    f->journal.nbatch = 0;
    /* Faster than the limit (1 MiB/s here) with a leecher present: 10 MiB/s
     * over the 10 s the clock is moved, so a slow run (valgrind on a busy
     * machine adds whole seconds between announces) still exceeds it. */
    f->cfg.max_upload_mibps = 1;
    assert_int_equal(fx_announce(f, (struct ann){.pk = "bob", .peer_id = PB, .left = 9}, SB), 200);
    f->journal.nbatch = 0;
    fx_age(f, 10);
    assert_int_equal(fx_announce(f, (struct ann){.left = 0, .up = 9000 + (100u << 20)}, SA), 200);
    r = &f->journal.batch[0];
    assert_int_equal(r->credited_up, 0);
    assert_int_equal((r->flags >> JOURNAL_SUSPICIOUS_SHIFT) & 3, ACCT_SUSPICIOUS_TOO_FAST);
    f->journal.nbatch = 0;
}

/* Past journal.max_mib of segments waiting for the store, announces are
 * refused (and change nothing) rather than answered without their books. */
static void test_journal_backlog_past_its_bound_refuses_announces(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 5}, SA), 200);
    f->journal.nbatch = 0;
    atomic_store(&f->t.journal_backlog, ((uint64_t)f->cfg.journal_max_mib << 20) + 1);
    assert_failure(f, fx_announce(f, (struct ann){.left = 5, .up = 10}, SA),
                   "tracker cannot record this announce now, try again later");
    assert_int_equal(f->journal.nbatch, 0);
    atomic_store(&f->t.journal_backlog, (uint64_t)f->cfg.journal_max_mib << 20);
    assert_int_equal(fx_announce(f, (struct ann){.left = 5, .up = 10}, SA), 200);
    assert_int_equal(f->journal.nbatch, 1);
    f->journal.nbatch = 0;
}

/* A peer may always leave: a torrent disabled, or download rights revoked,
 * while it was in the swarm must not keep it there until it expires. */
static void test_stopped_leaves_even_when_refused_otherwise(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 5}, SA), 200);
    assert_int_equal(swarm_of(f, H1).v4, 1);
    fx_torrent(f, T1, H1, false, false, "");
    assert_failure(f, fx_announce(f, (struct ann){.left = 5}, SA), "torrent disabled");
    assert_int_equal(swarm_of(f, H1).v4, 1);
    int st = fx_announce(f, (struct ann){.left = 5, .event = "stopped"}, SA);
    assert_int_equal(st, 200);
    assert_int_equal(swarm_of(f, H1).v4, 0);
}

/* "completed" with bytes still missing is a confused client, not a snatch. */
static void test_completed_with_left_is_not_a_snatch(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 5}, SA), 200);
    assert_int_equal(fx_announce(f, (struct ann){.left = 5, .event = "completed"}, SA), 200);
    assert_int_equal(swarm_of(f, H1).snatches, 0);
    assert_int_equal(fx_announce(f, (struct ann){.left = 0, .event = "completed"}, SA), 200);
    assert_int_equal(swarm_of(f, H1).snatches, 1);
}

static void test_longest_deletion_reason_fits_the_smallest_body(void **state)
{
    struct fx *f = *state;
    f->cfg.numwant_max = 1;
    f->cfg.scrape_max_hashes = 1;
    char reason[MK_REASON_MAX + 1];
    memset(reason, 'r', MK_REASON_MAX);
    reason[MK_REASON_MAX] = '\0';
    fx_torrent(f, 104, HDEL, true, true, reason);
    char msg[MK_REASON_MAX + 32];
    snprintf(msg, sizeof(msg), "unregistered torrent: %s", reason);
    /* fx_get checks bencode_ok: the answer was not cut. */
    assert_failure(f, fx_announce(f, (struct ann){.hash = HDEL}, SA), msg);
}

static void test_other_paths_get_404(void **state)
{
    struct fx *f = *state;
    struct world w = fx_populated(f);
    char ih[61] = {0}, pi[61] = {0};
    pct(ih, H1, 20);
    pct(pi, PB, 20);
    char q[256];
    snprintf(q, sizeof(q), "?info_hash=%s&peer_id=%s&port=1&uploaded=0&downloaded=0&left=0", ih,
             pi);
    const char *paths[] = {"/",           "/alice",          "/alice/announce/x",
                           "/alice/other", "/alice/Announce", "/nobody/other",
                           "/alice/",      "/alice/scrape/",  "/alice/announcex"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char target[512];
        snprintf(target, sizeof(target), "%s%s", paths[i], q);
        int st = fx_get(f, target, NULL, SA);
        static const char want[] = "d14:failure reason9:not founde";
        assert_int_equal(st, 404);
        assert_int_equal(f->len, sizeof(want) - 1);
        assert_memory_equal(f->body, want, sizeof(want) - 1);
        st = fx_get(f, paths[i], NULL, SA);
        assert_int_equal(st, 404);
        assert_int_equal(f->len, sizeof(want) - 1);
        assert_memory_equal(f->body, want, sizeof(want) - 1);
    }
    assert_unchanged(f, &w);
}

/* ---- addresses: proxy and ipv4=/ipv6= --------------------------------- */

static void fx_trust_10_slash_8(struct fx *f)
{
    snprintf(f->cfg.real_ip_header, sizeof(f->cfg.real_ip_header), "X-Forwarded-For");
    memset(&f->cfg.trusted_proxies[0], 0, sizeof(f->cfg.trusted_proxies[0]));
    f->cfg.trusted_proxies[0].family = AF_INET;
    f->cfg.trusted_proxies[0].addr[0] = 10;
    f->cfg.trusted_proxies[0].prefix = 8;
    f->cfg.ntrusted_proxies = 1;
}

static void test_trusted_proxy_rightmost_forwarded_address_is_used(void **state)
{
    struct fx *f = *state;
    fx_trust_10_slash_8(f);
    struct tracker_addr proxy = addr4(10, 1, 2, 3);
    int st = fx_announce(f,
                         (struct ann){.left = 0,
                                      .port = 1001,
                                      .headers = "X-Forwarded-For: 192.0.2.77, 198.51.100.9\r\n"},
                         proxy);
    struct tracker_addr client = addr4(198, 51, 100, 9);
    assert_announce(f, st, 1, 0, client, 0, NULL, 0);
    /* The swarm publishes that address. */
    struct entries alice = {.n = 0};
    ent_add(&alice, client, 1001);
    st = fx_announce(f, (struct ann){.pk = "bob", .peer_id = PB, .left = 1, .port = 1002}, SB);
    assert_announce(f, st, 1, 0, SB, 1, &alice, 1);
}

static void test_forwarded_address_is_ignored_from_untrusted_source(void **state)
{
    struct fx *f = *state;
    fx_trust_10_slash_8(f);
    int st = fx_announce(
        f, (struct ann){.left = 0, .headers = "X-Forwarded-For: 198.51.100.9\r\n"}, SB);
    assert_announce(f, st, 1, 0, SB, 0, NULL, 0);
    /* 11.x is outside 10/8. */
    st = fx_announce(f,
                     (struct ann){.pk = "bob", .peer_id = PB, .left = 0,
                                  .headers = "X-Forwarded-For: 198.51.100.9\r\n"},
                     addr4(11, 1, 2, 3));
    assert_announce(f, st, 2, 0, addr4(11, 1, 2, 3), 0, NULL, 0);
}

static void test_forwarded_address_is_ignored_without_real_ip_header(void **state)
{
    struct fx *f = *state;
    fx_trust_10_slash_8(f);
    f->cfg.real_ip_header[0] = '\0';
    struct tracker_addr proxy = addr4(10, 1, 2, 3);
    int st = fx_announce(
        f, (struct ann){.left = 0, .headers = "X-Forwarded-For: 198.51.100.9\r\n"}, proxy);
    assert_announce(f, st, 1, 0, proxy, 0, NULL, 0);
}

static void test_trusted_proxy_without_header_or_with_garbage_keeps_source(void **state)
{
    struct fx *f = *state;
    fx_trust_10_slash_8(f);
    struct tracker_addr proxy = addr4(10, 1, 2, 3);
    int st = fx_announce(f, (struct ann){.left = 0}, proxy);
    assert_announce(f, st, 1, 0, proxy, 0, NULL, 0);
    st = fx_announce(f, (struct ann){.left = 0, .headers = "X-Forwarded-For: not-an-ip\r\n"},
                     proxy);
    assert_announce(f, st, 1, 0, proxy, 0, NULL, 0);
    st = fx_announce(f, (struct ann){.left = 0, .headers = "X-Forwarded-For: 192.0.2.1,\r\n"},
                     proxy);
    assert_announce(f, st, 1, 0, proxy, 0, NULL, 0);
}

static void test_trusted_proxy_forwarding_v6_client_puts_it_in_v6_swarm(void **state)
{
    struct fx *f = *state;
    fx_trust_10_slash_8(f);
    struct tracker_addr proxy = addr4(10, 1, 2, 3);
    int st = fx_announce(
        f, (struct ann){.left = 0, .headers = "X-Forwarded-For: 192.0.2.1,  2001:db8::9 \r\n"},
        proxy);
    assert_announce(f, st, 1, 0, addr6("2001:db8::9"), 0, NULL, 0);
    struct swarm_state s = swarm_of(f, H1);
    assert_int_equal(s.v4, 0);
    assert_int_equal(s.v6, 1);

    f->cfg.ipv6 = false;
    st = fx_announce(f,
                     (struct ann){.pk = "bob", .peer_id = PB, .left = 0,
                                  .headers = "X-Forwarded-For: 2001:db8::a\r\n"},
                     proxy);
    assert_failure(f, st, "IPv6 is not served by this tracker");
}

/* BUG: a proxy listening dual-stack (nginx "listen [::]:80", HAProxy on
 * "::") forwards an IPv4 client as "::ffff:198.51.100.9". parse_forwarded
 * takes it as IPv6, so the client lands in the v6 swarm, is answered
 * peers6 (useless to an IPv4-only client) with a 16-byte external ip, and is
 * published to v6 peers as an address they cannot reach; with
 * server.ipv6 = false it is even refused "IPv6 is not served by this
 * tracker". config_is_trusted_proxy already unwraps v4-mapped addresses for
 * the proxy itself; the forwarded address is not. Skipped until fixed. */
static void test_forwarded_v4_mapped_address_is_an_ipv4_client(void **state)
{
    struct fx *f = *state;
    fx_trust_10_slash_8(f);
    struct tracker_addr proxy = addr4(10, 1, 2, 3);
    int st = fx_announce(
        f, (struct ann){.left = 0, .headers = "X-Forwarded-For: ::ffff:198.51.100.9\r\n"}, proxy);
    assert_announce(f, st, 1, 0, addr4(198, 51, 100, 9), 0, NULL, 0);
    assert_int_equal(swarm_of(f, H1).v4, 1);
    assert_int_equal(swarm_of(f, H1).v6, 0);
}

static void test_ipv4_param_replaces_v4_source_when_allowed(void **state)
{
    struct fx *f = *state;
    f->cfg.allow_ip_param = true;
    struct tracker_addr claimed = addr4(192, 0, 2, 200);
    int st = fx_announce(f, (struct ann){.left = 0, .port = 1001, .extra = "&ipv4=192.0.2.200"}, SB);
    assert_announce(f, st, 1, 0, claimed, 0, NULL, 0);
    struct entries alice = {.n = 0};
    ent_add(&alice, claimed, 1001);
    st = fx_announce(f, (struct ann){.pk = "bob", .peer_id = PB, .left = 1, .port = 1002}, SC);
    assert_announce(f, st, 1, 0, SC, 1, &alice, 1);
}

static void test_ipv4_param_is_ignored_when_not_allowed(void **state)
{
    struct fx *f = *state;
    int st = fx_announce(f, (struct ann){.left = 0, .extra = "&ipv4=192.0.2.200"}, SB);
    assert_announce(f, st, 1, 0, SB, 0, NULL, 0);
}

static void test_ip_params_never_change_the_family(void **state)
{
    struct fx *f = *state;
    f->cfg.allow_ip_param = true;
    struct tracker_addr src6 = addr6("2001:db8::1");
    int st = fx_announce(f, (struct ann){.left = 0, .extra = "&ipv4=192.0.2.200"}, src6);
    assert_announce(f, st, 1, 0, src6, 0, NULL, 0);
    st = fx_announce(f,
                     (struct ann){.pk = "bob", .peer_id = PB, .left = 0,
                                  .extra = "&ipv6=2001:db8::99"},
                     SB);
    assert_announce(f, st, 2, 0, SB, 0, NULL, 0);
    struct swarm_state s = swarm_of(f, H1);
    assert_int_equal(s.v4, 1);
    assert_int_equal(s.v6, 1);
    /* ipv6= on a v6 request replaces it. */
    st = fx_announce(f,
                     (struct ann){.pk = "carol", .peer_id = PC, .left = 0,
                                  .extra = "&ipv6=2001:db8::99"},
                     addr6("2001:db8::5"));
    assert_announce(f, st, 3, 0, addr6("2001:db8::99"), 0, NULL, 0);
}

/* ---- expiry ----------------------------------------------------------- */

static void test_reap_removes_peers_silent_longer_than_interval_times_factor(void **state)
{
    struct fx *f = *state;
    time_t ttl = (time_t)f->cfg.interval * f->cfg.expiry_factor;
    assert_int_equal(ttl, 3600);
    assert_int_equal(fx_announce(f, (struct ann){.left = 1, .up = 10, .down = 10}, SA), 200);
    fx_age(f, ttl - 1);
    assert_int_equal(fx_reap(f), 0);
    assert_int_equal(swarm_of(f, H1).v4, 1);

    /* bob announces now; alice has been silent ttl + 1 s once we move on. */
    assert_int_equal(
        fx_announce(f, (struct ann){.pk = "bob", .peer_id = PB, .left = 1, .port = 1002}, SB), 200);
    fx_age(f, 2);
    assert_int_equal(fx_reap(f), 1);
    struct entries bob = {.n = 0};
    ent_add(&bob, SB, 1002);
    /* alice is back with no baseline: credited nothing, sees bob. */
    int st = fx_announce(f, (struct ann){.left = 1, .up = 999, .down = 999}, SA);
    assert_announce(f, st, 0, 0, SA, 2, &bob, 1);
    assert_ring_empty(f);

    /* Both silent past the ttl: both go. */
    fx_age(f, ttl + 5);
    assert_int_equal(fx_reap(f), 2);
    struct swarm_state s = swarm_of(f, H1);
    assert_int_equal(s.v4, 0);
    assert_int_equal(s.v4_leech, 0);
}

static void test_reap_follows_cfg_interval_and_covers_both_families(void **state)
{
    struct fx *f = *state;
    f->cfg.interval = 10;
    f->cfg.expiry_factor = 3;
    assert_int_equal(fx_announce(f, (struct ann){.left = 0}, SA), 200);
    assert_int_equal(fx_announce(f, (struct ann){.peer_id = PB, .left = 1}, addr6("2001:db8::1")),
                     200);
    assert_int_equal(fx_announce(f, (struct ann){.hash = H2, .left = 1}, SA), 200);
    fx_age(f, 29);
    assert_int_equal(fx_reap(f), 0);
    fx_age(f, 3);
    assert_int_equal(fx_reap(f), 3);
    assert_int_equal(swarm_of(f, H1).v4 + swarm_of(f, H1).v6 + swarm_of(f, H2).v4, 0);
}

static void test_reap_follows_live_interval(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 0}, SA), 200);
    struct mk_errbuf eb = {{0}};
    assert_int_equal(tracker_set_live(&f->t, 100, 50, 0, &eb), 0);
    fx_age(f, 199);
    assert_int_equal(fx_reap(f), 0);
    fx_age(f, 3);
    assert_int_equal(fx_reap(f), 1);
}

/* ---- scrape ----------------------------------------------------------- */

static void ex_scrape_entry(struct exp *e, const uint8_t hash[20], int complete, int downloaded,
                            int downloaders, int incomplete)
{
    ex_fmt(e, "20:");
    ex_raw(e, hash, 20);
    ex_fmt(e, "d8:completei%de10:downloadedi%de11:downloadersi%de10:incompletei%dee", complete,
           downloaded, downloaders, incomplete);
}

static void test_scrape_is_sorted_skips_unregistered_and_excludes_partial_seeds(void **state)
{
    struct fx *f = *state;
    /* H1: alice seeder (after completing), bob leecher, carol partial seed; dave v6 leecher. */
    assert_int_equal(fx_announce(f, (struct ann){.left = 5}, SA), 200);
    assert_int_equal(fx_announce(f, (struct ann){.left = 0, .event = "completed"}, SA), 200);
    assert_int_equal(
        fx_announce(f, (struct ann){.pk = "bob", .peer_id = PB, .left = 5, .port = 1002}, SB), 200);
    assert_int_equal(fx_announce(f,
                                 (struct ann){.pk = "carol", .peer_id = PC, .left = 5,
                                              .port = 1003, .event = "paused"},
                                 SC),
                     200);
    assert_int_equal(fx_announce(f, (struct ann){.pk = "dave", .peer_id = PD, .left = 5},
                                 addr6("2001:db8::4")),
                     200);
    /* H2: one v4 seeder and one v6 seeder. */
    assert_int_equal(fx_announce(f, (struct ann){.hash = H2, .left = 0}, SA), 200);
    assert_int_equal(
        fx_announce(f, (struct ann){.hash = H2, .left = 0, .peer_id = PB}, addr6("2001:db8::1")),
        200);

    const uint8_t *ask[] = {H2, HNONE, H1, HDEL, HDELNR};
    int st = fx_scrape(f, "bob", ask, 5);
    struct exp e = {.len = 0};
    ex_fmt(&e, "d5:filesd");
    ex_scrape_entry(&e, H1, 1, 1, 2, 3);
    ex_scrape_entry(&e, H2, 2, 0, 0, 0);
    ex_fmt(&e, "ee");
    assert_int_equal(st, 200);
    assert_body(f, &e);

    /* Scrape changes nothing and pushes nothing. */
    struct acct_delta d[8];
    ring_take(f, d, 8);
    struct world before = world_of(f);
    assert_int_equal(fx_scrape(f, "alice", ask, 5), 200);
    assert_unchanged(f, &before);

    /* The announce counts agree: incomplete includes the partial seed. */
    st = fx_announce(f, (struct ann){.pk = "bob", .peer_id = PB, .left = 5, .port = 1002}, SB);
    struct entries others = {.n = 0};
    ent_add(&others, SA, 6881);
    ent_add(&others, SC, 1003);
    assert_announce(f, st, 1, 1, SB, 3, &others, 2);
}

static void test_partial_seed_announcing_without_paused_is_a_downloader_again(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 5, .event = "paused"}, SA), 200);
    const uint8_t *ask[] = {H1};
    struct exp e = {.len = 0};
    ex_fmt(&e, "d5:filesd");
    ex_scrape_entry(&e, H1, 0, 0, 0, 1);
    ex_fmt(&e, "ee");
    assert_int_equal(fx_scrape(f, "alice", ask, 1), 200);
    assert_body(f, &e);

    assert_int_equal(fx_announce(f, (struct ann){.left = 5}, SA), 200);
    e.len = 0;
    ex_fmt(&e, "d5:filesd");
    ex_scrape_entry(&e, H1, 0, 0, 1, 1);
    ex_fmt(&e, "ee");
    assert_int_equal(fx_scrape(f, "alice", ask, 1), 200);
    assert_body(f, &e);

    /* paused with nothing left is a seeder, not a partial seed. */
    assert_int_equal(fx_announce(f, (struct ann){.left = 0, .event = "paused"}, SA), 200);
    e.len = 0;
    ex_fmt(&e, "d5:filesd");
    ex_scrape_entry(&e, H1, 1, 0, 0, 0);
    ex_fmt(&e, "ee");
    assert_int_equal(fx_scrape(f, "alice", ask, 1), 200);
    assert_body(f, &e);
}

/* In a cluster, a scrape answers the swarm's counts from the node that saw
 * its latest announce (cluster/counts.c): this one's own peers while its
 * announce is the latest, the other node's row once that one's is later,
 * never a sum; an announce answers its own peers. Snatches: the larger. */
static void test_scrape_answers_the_freshest_nodes_counts(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 0}, SA), 200);
    uint32_t now = (uint32_t)time(NULL);
    const uint8_t *ask[] = {H1};
    /* The other node saw the swarm before: this node answers alone. */
    torrents_set_remote(f->torrents, H1, 4, 7, 0, now - 60, 1);
    assert_int_equal(fx_scrape(f, "bob", ask, 1), 200);
    struct exp e = {.len = 0};
    ex_fmt(&e, "d5:filesd");
    ex_scrape_entry(&e, H1, 1, 0, 0, 0);
    ex_fmt(&e, "ee");
    assert_body(f, &e);
    /* It saw a later announce (the swarm moved there): its row answers,
     * and its snatch count, larger, is the torrent's. */
    torrents_set_remote(f->torrents, H1, 4, 7, 3, now + 60, 2);
    assert_int_equal(fx_scrape(f, "bob", ask, 1), 200);
    e.len = 0;
    ex_fmt(&e, "d5:filesd");
    ex_scrape_entry(&e, H1, 4, 3, 0, 7);
    ex_fmt(&e, "ee");
    assert_body(f, &e);
    assert_int_equal(fx_announce(f, (struct ann){.left = 0}, SA), 200);
    assert_announce(f, 200, 1, 3, SA, 0, NULL, 0);
}

/* In a cluster, a node restores at start only the baselines it wrote
 * itself: a peer whose last report another node answered (the swarm moved
 * there) is new here when it comes back, so no byte is credited twice. */
static void test_restore_takes_only_this_nodes_baselines(void **state)
{
    struct fx *f = *state;
    fx_start(f);
    int64_t now = (int64_t)time(NULL);
    struct peer_row row = {.user_id = 1, .family = 4, .port = 6881, .uploaded = 1000,
                           .seeder = true, .last_seen = now - 1, .node_id = 3};
    memcpy(row.info_hash, H1, 20);
    memcpy(row.peer_id, "-qB4650-aaaaaaaaaaaa", 20);
    memcpy(row.ip, "\x7f\x00\x00\x01", 4);
    f->cfg.cluster_node_id = 2;
    assert_int_equal(tracker_restore_peer(&f->t, &row, now), MK_ENOTFOUND);
    row.node_id = 0; /* written before node ids, or by no node */
    assert_int_equal(tracker_restore_peer(&f->t, &row, now), MK_ENOTFOUND);
    struct torrent_shard *shard;
    struct torrent *tor = torrents_lock(f->torrents, H1, &shard);
    assert_int_equal(peerset_count(&tor->v4), 0);
    torrents_unlock(shard);
    row.node_id = 2;
    assert_int_equal(tracker_restore_peer(&f->t, &row, now), MK_OK);
    tor = torrents_lock(f->torrents, H1, &shard);
    assert_int_equal(peerset_count(&tor->v4), 1);
    assert_int_equal(tor->announced_at, (uint32_t)(now - 1)); /* its last announce here */
    torrents_unlock(shard);
    /* A single node restores whatever the store has. */
    f->cfg.cluster_node_id = 0;
    memcpy(row.peer_id, "-qB4650-bbbbbbbbbbbb", 20);
    row.node_id = 3;
    assert_int_equal(tracker_restore_peer(&f->t, &row, now), MK_OK);
    assert_int_equal(f->journal.nbatch, 0); /* a restore books nothing */
}

/* GET /health: what a load balancer's check sees. */
static void test_health_is_ok_until_stopping_or_the_backlog_refuses(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_get(f, "/health", NULL, SA), 200);
    assert_int_equal(f->len, 2);
    assert_memory_equal(f->body, "ok", 2);
    atomic_store(&f->t.journal_backlog, ((uint64_t)f->cfg.journal_max_mib << 20) + 1);
    assert_int_equal(fx_get(f, "/health", NULL, SA), 503);
    atomic_store(&f->t.journal_backlog, 0);
    assert_int_equal(fx_get(f, "/health?x=1", NULL, SA), 200);
    atomic_store(&f->t.stopping, true);
    assert_int_equal(fx_get(f, "/health", NULL, SA), 503);
    assert_memory_equal(f->body, "stopping", 8);
    assert_int_equal(fx_get(f, "/healthz", NULL, SA), 404);
}

static void test_scrape_of_unregistered_only_is_empty_files(void **state)
{
    struct fx *f = *state;
    const uint8_t *ask[] = {HNONE, HDEL};
    static const char want[] = "d5:filesdee";
    assert_int_equal(fx_scrape(f, "alice", ask, 2), 200);
    assert_int_equal(f->len, sizeof(want) - 1);
    assert_memory_equal(f->body, want, sizeof(want) - 1);
}

/* Current behaviour: a disabled torrent is left out like an unregistered
 * one (PROTOCOL.md speaks only of unregistered hashes). */
static void test_scrape_leaves_out_disabled_torrent(void **state)
{
    struct fx *f = *state;
    const uint8_t *ask[] = {HDIS, H1};
    struct exp e = {.len = 0};
    ex_fmt(&e, "d5:filesd");
    ex_scrape_entry(&e, H1, 0, 0, 0, 0);
    ex_fmt(&e, "ee");
    assert_int_equal(fx_scrape(f, "alice", ask, 2), 200);
    assert_body(f, &e);
}

static void test_scrape_refusals(void **state)
{
    struct fx *f = *state;
    const uint8_t *ask[] = {H1, H2, HDIS};
    assert_failure(f, fx_scrape(f, "nobody", ask, 1), "unknown passkey");
    assert_failure(f, fx_get(f, "/alice/scrape", NULL, SA), "info_hash: missing");
    assert_failure(f, fx_get(f, "/nobody/scrape", NULL, SA), "unknown passkey");
    /* A seed-only account may scrape. */
    struct exp e = {.len = 0};
    ex_fmt(&e, "d5:filesd");
    ex_scrape_entry(&e, H1, 0, 0, 0, 0);
    ex_fmt(&e, "ee");
    assert_int_equal(fx_scrape(f, "seedonly", ask, 1), 200);
    assert_body(f, &e);
    /* More distinct hashes than scrape_max_hashes. */
    f->cfg.scrape_max_hashes = 2;
    tracker_local_fini(&f->l);
    f->local_ready = false;
    assert_failure(f, fx_scrape(f, "alice", ask, 3), "info_hash: more than 2 given");
    e.len = 0;
    ex_fmt(&e, "d5:filesd");
    ex_scrape_entry(&e, H1, 0, 0, 0, 0);
    ex_scrape_entry(&e, H2, 0, 0, 0, 0);
    ex_fmt(&e, "ee");
    assert_int_equal(fx_scrape(f, "alice", ask, 2), 200);
    assert_body(f, &e);
}

static void test_scrape_of_repeated_hash_answers_it_once(void **state)
{
    struct fx *f = *state;
    assert_int_equal(fx_announce(f, (struct ann){.left = 0}, SA), 200);
    const uint8_t *ask[] = {H1, H1, H1};
    struct exp e = {.len = 0};
    ex_fmt(&e, "d5:filesd");
    ex_scrape_entry(&e, H1, 1, 0, 0, 0);
    ex_fmt(&e, "ee");
    assert_int_equal(fx_scrape(f, "alice", ask, 3), 200);
    assert_body(f, &e);
}

/* ---- counters (for /metrics) ------------------------------------------ */

static void test_counters_count_announces_scrapes_and_failures_by_reason(void **state)
{
    struct fx *f = *state;
    struct tracker_addr src = addr4(198, 51, 100, 7);
    assert_int_equal(fx_announce(f, (struct ann){.left = 5}, src), 200);
    assert_int_equal(fx_announce(f, (struct ann){.pk = "nobody"}, src), 200);
    assert_int_equal(fx_announce(f, (struct ann){.pk = "frozen"}, src), 200);
    assert_int_equal(fx_announce(f, (struct ann){.hash = HDEL}, src), 200);
    assert_int_equal(fx_announce(f, (struct ann){.hash = HDELNR}, src), 200);
    assert_int_equal(fx_announce(f, (struct ann){.hash = HDIS}, src), 200);
    assert_int_equal(fx_announce(f, (struct ann){.pk = "seedonly", .left = 1}, src), 200);
    assert_int_equal(fx_get(f, "/alice/announce?port=1", NULL, src), 200);
    assert_int_equal(fx_get(f, "/alice/elsewhere", NULL, src), 404);
    const uint8_t *hashes[] = {H1};
    assert_int_equal(fx_scrape(f, "alice", hashes, 1), 200);
    assert_int_equal(fx_scrape(f, "nobody", hashes, 1), 200);

    struct tracker_stats st;
    tracker_stats_read(&f->t, &st);
    assert_int_equal(st.announces, 9);
    assert_int_equal(st.scrapes, 2);
    uint64_t want[TRACKER_FAILURE_KINDS] = {0};
    const char *labels[] = {"unknown_passkey", "account_disabled", "unregistered_torrent",
                            "torrent_disabled", "download_not_allowed", "bad_request",
                            "not_found"};
    const uint64_t counts[] = {2, 1, 2, 1, 1, 1, 1};
    for (size_t k = 0; k < sizeof(labels) / sizeof(labels[0]); k++) {
        for (unsigned i = 0; i < TRACKER_FAILURE_KINDS; i++) {
            if (strcmp(tracker_failure_label(i), labels[k]) == 0) {
                want[i] = counts[k];
            }
        }
    }
    for (unsigned i = 0; i < TRACKER_FAILURE_KINDS; i++) {
        if (st.failures[i] != want[i]) {
            fail_msg("%s: %llu, want %llu", tracker_failure_label(i),
                     (unsigned long long)st.failures[i], (unsigned long long)want[i]);
        }
    }
    /* Every announce lands in exactly one latency bucket. */
    uint64_t in_buckets = 0;
    for (unsigned i = 0; i <= TRACKER_LATENCY_BUCKETS; i++) {
        in_buckets += st.latency[i];
    }
    assert_int_equal(in_buckets, 9);
    assert_true(st.latency_ns_sum > 0);
    for (unsigned i = 1; i < TRACKER_LATENCY_BUCKETS; i++) {
        assert_true(tracker_latency_bound(i) > tracker_latency_bound(i - 1));
    }
}

static void test_counters_of_two_workers_add_up(void **state)
{
    struct fx *f = *state;
    struct tracker_addr src = addr4(198, 51, 100, 7);
    assert_int_equal(fx_announce(f, (struct ann){.left = 5}, src), 200);
    struct tracker_local other;
    assert_int_equal(tracker_local_init(&other, &f->t, &f->journal, 7), 0);
    assert_ptr_not_equal(other.counters, f->l.counters);
    struct tracker_local mine = f->l;
    f->l = other;
    assert_int_equal(fx_announce(f, (struct ann){.pk = "nobody"}, src), 200);
    f->l = mine;
    tracker_local_fini(&other);
    struct tracker_stats st;
    tracker_stats_read(&f->t, &st);
    assert_int_equal(st.announces, 2);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_first_v4_announce_is_sorted_dict_counting_itself),
        T(test_interval_and_min_interval_come_from_cfg),
        T(test_live_settings_change_the_next_answer),
        T(test_live_settings_refuse_bad_values_and_keep_old_ones),
        T(test_v4_peer_entry_is_4_byte_address_then_big_endian_port),
        T(test_v6_answer_is_peers6_with_18_byte_entries_and_16_byte_external_ip),
        T(test_families_never_mix_but_counts_include_both),
        T(test_seeder_gets_only_leechers),
        T(test_seeder_with_no_leechers_gets_no_peers),
        T(test_leecher_gets_everyone_else_never_itself),
        T(test_same_peer_id_under_another_user_is_another_peer),
        T(test_reannounce_from_new_address_replaces_the_old_one),
        T(test_numwant_absent_uses_numwant_default),
        T(test_numwant_is_capped_at_numwant_max),
        T(test_numwant_more_than_candidates_gets_all_candidates),
        T(test_numwant_zero_answers_no_peers_but_joins_swarm),
        T(test_stopped_removes_peer_and_answers_empty_peers),
        T(test_stopped_from_unknown_peer_changes_nothing),
        T(test_completed_counts_once_per_user_and_pushes_one_snatch),
        T(test_completed_with_counters_carries_delta_and_snatch_together),
        T(test_first_announce_credits_nothing),
        T(test_unwritable_journal_refuses_the_announce),
        T(test_increasing_reports_push_exact_differences),
        T(test_lower_report_pushes_new_value_as_delta),
        T(test_unchanged_report_pushes_nothing),
        T(test_stopped_pushes_the_last_difference),
        T(test_unknown_passkey_is_refused),
        T(test_unknown_passkey_parks_then_gets_the_lookups_answer),
        T(test_unknown_info_hash_parks_then_gets_the_lookups_answer),
        T(test_passkey_with_other_characters_is_unknown_even_if_stored),
        T(test_64_char_passkey_is_looked_up),
        T(test_disabled_account_is_refused),
        T(test_unknown_passkey_is_checked_before_parameters),
        T(test_bad_parameter_names_the_key),
        T(test_bad_parameter_is_checked_before_whitelist),
        T(test_whitelist_is_checked_before_torrent),
        T(test_whitelist_off_accepts_any_client),
        T(test_switched_off_family_is_checked_after_whitelist_before_torrent),
        T(test_unregistered_torrent_is_refused),
        T(test_unregistered_is_checked_before_download_rights),
        T(test_disabled_torrent_is_refused_before_download_rights),
        T(test_no_download_right_refuses_only_when_left_is_positive),
        T(test_longest_deletion_reason_fits_the_smallest_body),
        T(test_other_paths_get_404),
        T(test_trusted_proxy_rightmost_forwarded_address_is_used),
        T(test_forwarded_address_is_ignored_from_untrusted_source),
        T(test_forwarded_address_is_ignored_without_real_ip_header),
        T(test_trusted_proxy_without_header_or_with_garbage_keeps_source),
        T(test_trusted_proxy_forwarding_v6_client_puts_it_in_v6_swarm),
        T(test_forwarded_v4_mapped_address_is_an_ipv4_client),
        T(test_stopped_leaves_even_when_refused_otherwise),
        T(test_every_announce_journals_the_peer_baseline),
        T(test_credit_applies_every_multiplier),
        T(test_seed_time_and_bonus_points_are_booked),
        T(test_suspicious_uploads_are_not_credited),
        T(test_journal_backlog_past_its_bound_refuses_announces),
        T(test_completed_with_left_is_not_a_snatch),
        T(test_ipv4_param_replaces_v4_source_when_allowed),
        T(test_ipv4_param_is_ignored_when_not_allowed),
        T(test_ip_params_never_change_the_family),
        T(test_reap_removes_peers_silent_longer_than_interval_times_factor),
        T(test_reap_follows_cfg_interval_and_covers_both_families),
        T(test_reap_follows_live_interval),
        T(test_scrape_is_sorted_skips_unregistered_and_excludes_partial_seeds),
        T(test_partial_seed_announcing_without_paused_is_a_downloader_again),
        T(test_scrape_of_unregistered_only_is_empty_files),
        T(test_scrape_answers_the_freshest_nodes_counts),
        T(test_restore_takes_only_this_nodes_baselines),
        T(test_health_is_ok_until_stopping_or_the_backlog_refuses),
        T(test_scrape_leaves_out_disabled_torrent),
        T(test_scrape_refusals),
        T(test_scrape_of_repeated_hash_answers_it_once),
        T(test_counters_count_announces_scrapes_and_failures_by_reason),
        T(test_counters_of_two_workers_add_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
