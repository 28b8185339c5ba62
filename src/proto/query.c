/* proto/query.c: announce and scrape query strings -> structs.
 *
 * Owns: splitting a query on '&', the per-key rules of announce (BEP 3, 7,
 * 21, 23) and the info_hash list of scrape (BEP 48). Not here: config caps,
 * users, torrents, the passkey (it travels in the path).
 * Invariants: reads only query[0..len); allocates nothing; every message put
 * in eb is sent to the client verbatim, so it names the key and nothing else
 * from the input. Key names are compared as raw bytes: clients never escape
 * them. Numbers and event names are taken raw too (digits and letters are
 * never escaped); binary values and addresses are percent-decoded.
 */
#include "proto/query.h"

#include <arpa/inet.h>
#include <string.h>

#include "proto/percent.h"
#include "util/str.h"

enum query_key {
    KEY_INFO_HASH,
    KEY_PEER_ID,
    KEY_PORT,
    KEY_UPLOADED,
    KEY_DOWNLOADED,
    KEY_LEFT,
    KEY_EVENT,
    KEY_NUMWANT,
    KEY_COMPACT,
    KEY_NO_PEER_ID,
    KEY_CORRUPT,
    KEY_KEY,
    KEY_IPV4,
    KEY_IPV6,
    KEY_COUNT,
    KEY_UNKNOWN = KEY_COUNT,
};

static const char *const query_key_names[KEY_COUNT] = {
    [KEY_INFO_HASH] = "info_hash", [KEY_PEER_ID] = "peer_id",       [KEY_PORT] = "port",
    [KEY_UPLOADED] = "uploaded",   [KEY_DOWNLOADED] = "downloaded", [KEY_LEFT] = "left",
    [KEY_EVENT] = "event",         [KEY_NUMWANT] = "numwant",       [KEY_COMPACT] = "compact",
    [KEY_NO_PEER_ID] = "no_peer_id", [KEY_CORRUPT] = "corrupt",     [KEY_KEY] = "key",
    [KEY_IPV4] = "ipv4",           [KEY_IPV6] = "ipv6",
};

/* Longest textual address we accept, decoded: "[" + 45-char IPv6 + "]:65535". */
#define QUERY_ADDR_MAX 64

struct query_iter {
    const char *p;
    const char *end;
};

/* Next non-empty '&'-separated piece as key and value; a piece without '='
 * is a key with an empty value. */
static bool query_next(struct query_iter *it, struct mk_str *key, struct mk_str *val)
{
    while (it->p < it->end) {
        const char *amp = memchr(it->p, '&', (size_t)(it->end - it->p));
        const char *piece_end = amp ? amp : it->end;
        const char *start = it->p;
        it->p = amp ? amp + 1 : it->end;
        if (piece_end == start) {
            continue;
        }
        const char *eq = memchr(start, '=', (size_t)(piece_end - start));
        if (eq) {
            *key = (struct mk_str){start, (size_t)(eq - start)};
            *val = (struct mk_str){eq + 1, (size_t)(piece_end - eq - 1)};
        } else {
            *key = (struct mk_str){start, (size_t)(piece_end - start)};
            *val = (struct mk_str){piece_end, 0};
        }
        return true;
    }
    return false;
}

/* True when s holds exactly the NUL-terminated name. Unlike mk_str_eq, no
 * strlen of the name. */
static bool query_name_eq(struct mk_str s, const char *name)
{
    size_t i = 0;
    for (; i < s.len; i++) {
        if (name[i] == '\0' || name[i] != s.p[i]) {
            return false; /* never reads past the name's NUL */
        }
    }
    return name[i] == '\0';
}

/* Every key of every query comes through here, so the names are told apart
 * by length first and only the one or few of that length are compared
 * (walking the whole table byte by byte cost ~190 instructions a key). */
static enum query_key query_key_find(struct mk_str key)
{
    /* The keys of each name length, stored + 1 so that 0 ends a row. */
#define K(k) ((unsigned char)((k) + 1))
    static const unsigned char by_len[][4] = {
        [3] = {K(KEY_KEY)},
        [4] = {K(KEY_PORT), K(KEY_LEFT), K(KEY_IPV4), K(KEY_IPV6)},
        [5] = {K(KEY_EVENT)},
        [7] = {K(KEY_PEER_ID), K(KEY_NUMWANT), K(KEY_COMPACT), K(KEY_CORRUPT)},
        [8] = {K(KEY_UPLOADED)},
        [9] = {K(KEY_INFO_HASH)},
        [10] = {K(KEY_DOWNLOADED), K(KEY_NO_PEER_ID)},
    };
#undef K
    if (key.len >= sizeof(by_len) / sizeof(by_len[0])) {
        return KEY_UNKNOWN;
    }
    const unsigned char *row = by_len[key.len];
    for (size_t i = 0; i < 4 && row[i] != 0; i++) {
        enum query_key k = (enum query_key)(row[i] - 1);
        if (memcmp(key.p, query_key_names[k], key.len) == 0) {
            return k;
        }
    }
    return KEY_UNKNOWN;
}

enum query_num { NUM_OK, NUM_NOT_A_NUMBER, NUM_OVER };

/* Plain decimal digits only: no sign, no space, not empty. On NUM_OVER *out
 * is max, so callers that clamp can use it. */
static enum query_num query_num(struct mk_str v, uint64_t max, uint64_t *out)
{
    if (v.len == 0) {
        return NUM_NOT_A_NUMBER;
    }
    uint64_t n = 0;
    if (v.len <= 19) {
        /* Up to 19 digits cannot overflow 64 bits (10^19 - 1 < 2^64): no
         * check per digit, one against max at the end. */
        for (size_t i = 0; i < v.len; i++) {
            unsigned d = (unsigned char)v.p[i] - (unsigned)'0';
            if (d > 9) {
                return NUM_NOT_A_NUMBER;
            }
            n = n * 10 + d;
        }
        *out = n > max ? max : n;
        return n > max ? NUM_OVER : NUM_OK;
    }
    bool over = false;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (c < '0' || c > '9') {
            return NUM_NOT_A_NUMBER;
        }
        unsigned d = c - '0';
        if (!over && n > (max - d) / 10) {
            over = true;
        }
        if (!over) {
            n = n * 10 + d;
        }
    }
    *out = over ? max : n;
    return over ? NUM_OVER : NUM_OK;
}

static int query_counter(struct mk_str v, const char *name, uint64_t *out, struct mk_errbuf *eb)
{
    switch (query_num(v, INT64_MAX, out)) {
    case NUM_OK:
        return 0;
    case NUM_NOT_A_NUMBER:
        return mk_fail(eb, MK_EINVAL, "%s: not a number", name);
    case NUM_OVER:
        break;
    }
    return mk_fail(eb, MK_EINVAL, "%s: out of range", name);
}

static int query_id20(struct mk_str v, const char *name, uint8_t out[20], struct mk_errbuf *eb)
{
    long n = percent_decode(v.p, v.len, out, 20);
    if (n == MK_EINVAL) {
        return mk_fail(eb, MK_EINVAL, "%s: bad percent-encoding", name);
    }
    if (n != 20) {
        return mk_fail(eb, MK_EINVAL, "%s: must be 20 bytes", name);
    }
    return 0;
}

static int query_bool(struct mk_str v, const char *name, bool *out, struct mk_errbuf *eb)
{
    if (mk_str_eq(v, "0") || mk_str_eq(v, "1")) {
        *out = v.p[0] == '1';
        return 0;
    }
    return mk_fail(eb, MK_EINVAL, "%s: must be 0 or 1", name);
}

static int query_event(struct mk_str v, enum announce_event *out, struct mk_errbuf *eb)
{
    static const struct {
        const char *name;
        enum announce_event ev;
    } events[] = {
        {"", EVENT_NONE},
        {"started", EVENT_STARTED},
        {"stopped", EVENT_STOPPED},
        {"completed", EVENT_COMPLETED},
        {"paused", EVENT_PAUSED},
    };
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        if (query_name_eq(v, events[i].name)) {
            *out = events[i].ev;
            return 0;
        }
    }
    return mk_fail(eb, MK_EINVAL, "event: unknown value");
}

/* key= is only an aid for telling a client's sessions apart, and clients
 * disagree on its alphabet: a value that is not all hex is ignored. */
static void query_key_hex(struct mk_str v, struct announce_req *out)
{
    uint32_t k = 0;
    if (v.len == 0) {
        return;
    }
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        unsigned d;
        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            d = c - 'A' + 10;
        } else {
            return;
        }
        if (i < 8) {
            k = k << 4 | d;
        }
    }
    out->key = k;
    out->has_key = true;
}

/* A port after an address: 1..65535, digits only. */
static bool query_addr_port(const char *s, size_t len)
{
    uint64_t port;
    return len > 0 && query_num((struct mk_str){s, len}, 65535, &port) == NUM_OK && port != 0;
}

/* BEP 7: ipv4=a.b.c.d[:port], ipv6=addr or [addr]:port. The port, if any, is
 * checked but not kept: the announce's port= is the one peers are given. */
static int query_addr(struct mk_str v, bool v6, uint8_t *out, struct mk_errbuf *eb)
{
    const char *name = v6 ? "ipv6" : "ipv4";
    char text[QUERY_ADDR_MAX + 1];
    long n = percent_decode(v.p, v.len, (uint8_t *)text, QUERY_ADDR_MAX);
    if (n == MK_EINVAL) {
        return mk_fail(eb, MK_EINVAL, "%s: bad percent-encoding", name);
    }
    /* An escaped NUL would cut the address short for inet_pton. */
    if (n <= 0 || memchr(text, '\0', (size_t)n)) {
        return mk_fail(eb, MK_EINVAL, "%s: not an address", name);
    }
    size_t len = (size_t)n;
    text[len] = '\0';
    char *addr = text;
    if (!v6) {
        char *colon = memchr(text, ':', len);
        if (colon) {
            if (!query_addr_port(colon + 1, len - (size_t)(colon + 1 - text))) {
                return mk_fail(eb, MK_EINVAL, "%s: not an address", name);
            }
            *colon = '\0';
        }
    } else if (text[0] == '[') {
        char *close = memchr(text, ']', len);
        if (!close) {
            return mk_fail(eb, MK_EINVAL, "%s: not an address", name);
        }
        size_t rest = len - (size_t)(close + 1 - text);
        if (rest > 0 && (close[1] != ':' || !query_addr_port(close + 2, rest - 1))) {
            return mk_fail(eb, MK_EINVAL, "%s: not an address", name);
        }
        *close = '\0';
        addr = text + 1;
    }
    if (inet_pton(v6 ? AF_INET6 : AF_INET, addr, out) != 1) {
        return mk_fail(eb, MK_EINVAL, "%s: not an address", name);
    }
    return 0;
}

static int announce_param(enum query_key k, struct mk_str v, struct announce_req *out,
                          struct mk_errbuf *eb)
{
    const char *name = query_key_names[k];
    uint64_t num;
    switch (k) {
    case KEY_INFO_HASH:
        return query_id20(v, name, out->info_hash, eb);
    case KEY_PEER_ID:
        return query_id20(v, name, out->peer_id, eb);
    case KEY_PORT:
        switch (query_num(v, 65535, &num)) {
        case NUM_NOT_A_NUMBER:
            return mk_fail(eb, MK_EINVAL, "port: not a number");
        case NUM_OVER:
            return mk_fail(eb, MK_EINVAL, "port: must be between 1 and 65535");
        case NUM_OK:
            break;
        }
        if (num == 0) {
            return mk_fail(eb, MK_EINVAL, "port: must be between 1 and 65535");
        }
        out->port = (uint16_t)num;
        return 0;
    case KEY_UPLOADED:
        return query_counter(v, name, &out->uploaded, eb);
    case KEY_DOWNLOADED:
        return query_counter(v, name, &out->downloaded, eb);
    case KEY_LEFT:
        return query_counter(v, name, &out->left, eb);
    case KEY_CORRUPT:
        return query_counter(v, name, &out->corrupt, eb);
    case KEY_EVENT:
        return query_event(v, &out->event, eb);
    case KEY_NUMWANT:
        /* Larger asks are clamped: the caller caps numwant far lower anyway. */
        if (query_num(v, UINT32_MAX, &num) == NUM_NOT_A_NUMBER) {
            return mk_fail(eb, MK_EINVAL, "numwant: not a number");
        }
        out->numwant = (uint32_t)num;
        out->has_numwant = true;
        return 0;
    case KEY_COMPACT:
        return query_bool(v, name, &out->compact, eb);
    case KEY_NO_PEER_ID:
        return query_bool(v, name, &out->no_peer_id, eb);
    case KEY_KEY:
        query_key_hex(v, out);
        return 0;
    case KEY_IPV4:
        out->has_ipv4 = true;
        return query_addr(v, false, out->ipv4, eb);
    case KEY_IPV6:
        out->has_ipv6 = true;
        return query_addr(v, true, out->ipv6, eb);
    case KEY_UNKNOWN:
        break;
    }
    return 0;
}

int announce_parse(const char *query, size_t len, size_t max_params, struct announce_req *out,
                   struct mk_errbuf *eb)
{
    static const enum query_key required[] = {KEY_INFO_HASH, KEY_PEER_ID,    KEY_PORT,
                                              KEY_UPLOADED,  KEY_DOWNLOADED, KEY_LEFT};
    memset(out, 0, sizeof(*out));
    struct query_iter it = {query, query + len};
    struct mk_str key, val;
    uint32_t seen = 0;
    size_t params = 0;
    while (query_next(&it, &key, &val)) {
        if (++params > max_params) {
            return mk_fail(eb, MK_ELIMIT, "too many parameters");
        }
        enum query_key k = query_key_find(key);
        if (k == KEY_UNKNOWN) {
            continue;
        }
        if (seen & (1u << k)) {
            return mk_fail(eb, MK_EINVAL, "%s: given twice", query_key_names[k]);
        }
        seen |= 1u << k;
        int rc = announce_param(k, val, out, eb);
        if (rc != 0) {
            return rc;
        }
    }
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        if (!(seen & (1u << required[i]))) {
            return mk_fail(eb, MK_EINVAL, "%s: missing", query_key_names[required[i]]);
        }
    }
    return 0;
}

/* Inserts h into the sorted set hashes[0..*n) unless present. False when the
 * set is full and h is new. */
static bool scrape_insert(uint8_t (*hashes)[20], size_t max, size_t *n, const uint8_t h[20])
{
    size_t lo = 0, hi = *n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(hashes[mid], h, 20);
        if (c == 0) {
            return true;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (*n == max) {
        return false;
    }
    memmove(hashes[lo + 1], hashes[lo], (*n - lo) * 20);
    memcpy(hashes[lo], h, 20);
    (*n)++;
    return true;
}

int scrape_parse(const char *query, size_t len, uint8_t (*hashes)[20], size_t max, size_t *n,
                 struct mk_errbuf *eb)
{
    struct query_iter it = {query, query + len};
    struct mk_str key, val;
    *n = 0;
    while (query_next(&it, &key, &val)) {
        if (!mk_str_eq(key, "info_hash")) {
            continue;
        }
        uint8_t h[20];
        int rc = query_id20(val, "info_hash", h, eb);
        if (rc != 0) {
            return rc;
        }
        if (!scrape_insert(hashes, max, n, h)) {
            return mk_fail(eb, MK_ELIMIT, "info_hash: more than %zu given", max);
        }
    }
    if (*n == 0) {
        return mk_fail(eb, MK_EINVAL, "info_hash: missing");
    }
    return 0;
}
