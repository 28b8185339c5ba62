/* cluster/change.c: a change notice to and from its text form.
 *
 * Owns: change_put and change_parse (cluster/change.h gives the format).
 * Not here: sending or receiving them (store/pg_notify.c, store/redis_notify.c),
 * acting on them (cluster/changes.c).
 * Invariant: change_parse accepts exactly what change_put writes: decimal
 * numbers without sign or leading zeros, lowercase hex, nothing after.
 */
#include "cluster/change.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char *const change_names[] = {
    [CHANGE_USER] = "user",           [CHANGE_CLASS] = "class",
    [CHANGE_TORRENT] = "torrent",     [CHANGE_WHITELIST] = "whitelist",
    [CHANGE_SETTINGS] = "settings",   [CHANGE_TOKEN] = "token",
};

#define CHANGE_KINDS (sizeof(change_names) / sizeof(change_names[0]))

const char *change_kind_name(enum change_kind kind)
{
    return (unsigned)kind < CHANGE_KINDS && change_names[kind] ? change_names[kind] : "?";
}

static void change_hex(const uint8_t *b, char out[41])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 20; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[40] = '\0';
}

int change_put(const struct change *c, char *out, size_t cap)
{
    if (c->origin == 0 || (unsigned)c->kind >= CHANGE_KINDS || !change_names[c->kind]) {
        return MK_EINVAL;
    }
    char hex[41];
    change_hex(c->info_hash, hex);
    const char *name = change_names[c->kind];
    int n;
    switch (c->kind) {
    case CHANGE_USER:
    case CHANGE_CLASS:
        n = snprintf(out, cap, "%u:%s:%u", c->origin, name, c->id);
        break;
    case CHANGE_TORRENT:
        n = snprintf(out, cap, "%u:%s:%s", c->origin, name, hex);
        break;
    case CHANGE_TOKEN:
        n = snprintf(out, cap, "%u:%s:%u:%s", c->origin, name, c->id, hex);
        break;
    default:
        n = snprintf(out, cap, "%u:%s", c->origin, name);
        break;
    }
    return n < 0 || (size_t)n >= cap ? MK_ELIMIT : n;
}

/* A cursor over the payload's bytes. */
struct change_cur {
    const char *p, *end;
};

/* A decimal field up to ':' or the end, max at most UINT32_MAX. */
static bool change_num(struct change_cur *c, uint32_t max, uint32_t *out)
{
    const char *start = c->p;
    uint64_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        v = v * 10 + (uint64_t)(*c->p - '0');
        if (v > max) {
            return false;
        }
        c->p++;
    }
    size_t n = (size_t)(c->p - start);
    if (n == 0 || (n > 1 && *start == '0')) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

static bool change_sep(struct change_cur *c)
{
    if (c->p < c->end && *c->p == ':') {
        c->p++;
        return true;
    }
    return false;
}

static int change_xdigit(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

static bool change_hash(struct change_cur *c, uint8_t out[20])
{
    if (c->end - c->p < 40) {
        return false;
    }
    for (int i = 0; i < 20; i++) {
        int hi = change_xdigit(c->p[2 * i]), lo = change_xdigit(c->p[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    c->p += 40;
    return true;
}

int change_parse(const char *s, size_t len, struct change *out, struct mk_errbuf *eb)
{
    struct change_cur c = {s, s + len};
    struct change ch = {0};
    uint32_t origin;
    if (len > CHANGE_PAYLOAD_MAX) {
        return mk_fail(eb, MK_EINVAL, "change: %zu bytes, at most %d", len, CHANGE_PAYLOAD_MAX);
    }
    if (!change_num(&c, 65535, &origin) || origin == 0 || !change_sep(&c)) {
        return mk_fail(eb, MK_EINVAL, "change: origin must be a node id 1..65535");
    }
    ch.origin = (uint16_t)origin;
    const char *kind = c.p;
    while (c.p < c.end && *c.p != ':') {
        c.p++;
    }
    size_t klen = (size_t)(c.p - kind);
    for (unsigned k = 1; k < CHANGE_KINDS; k++) {
        if (strlen(change_names[k]) == klen && memcmp(change_names[k], kind, klen) == 0) {
            ch.kind = (enum change_kind)k;
        }
    }
    bool ok;
    switch (ch.kind) {
    case CHANGE_USER:
    case CHANGE_CLASS:
        ok = change_sep(&c) && change_num(&c, UINT32_MAX, &ch.id);
        break;
    case CHANGE_TORRENT:
        ok = change_sep(&c) && change_hash(&c, ch.info_hash);
        break;
    case CHANGE_TOKEN:
        ok = change_sep(&c) && change_num(&c, UINT32_MAX, &ch.id) && change_sep(&c) &&
             change_hash(&c, ch.info_hash);
        break;
    case CHANGE_WHITELIST:
    case CHANGE_SETTINGS:
        ok = true;
        break;
    default:
        return mk_fail(eb, MK_EINVAL, "change: unknown kind");
    }
    if (!ok || c.p != c.end) {
        return mk_fail(eb, MK_EINVAL, "change: malformed key of a %s change",
                       change_names[ch.kind]);
    }
    *out = ch;
    return 0;
}
