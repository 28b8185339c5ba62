/* conf/config_values.c: a config value's text into its field, and the
 * trusted proxies' address matching.
 *
 * Owns: the setter of each key type (booleans, bounded numbers, strings,
 * address literals, header names, enums, log settings, CIDR lists) with a
 * message that quotes the value safely, and config_is_trusted_proxy().
 * Not here: which keys exist and where values come from (config.c).
 */
#include "conf/config_key.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/boolword.h"

/* Values are quoted back in messages; cap and defang them so a long or binary
 * value cannot hide the key name or forge output. */
const char *config_excerpt(char *out, size_t cap, const char *v)
{
    size_t n = 0;
    size_t max = cap - 4;
    for (; v[n] && n < max; n++) {
        unsigned char c = (unsigned char)v[n];
        out[n] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (v[n]) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

static int config_why(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int config_why(char *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, CONFIG_WHY_MAX, fmt, ap);
    va_end(ap);
    return MK_EINVAL;
}

static int config_set_bool(bool *out, const char *v, char *why)
{
    if (mk_boolword_parse(v, out) == 0) {
        return 0;
    }
    char ex[48];
    return config_why(why, "\"%s\" is not a boolean (true/false, yes/no, on/off, 1/0)",
                      config_excerpt(ex, sizeof(ex), v));
}

/* Decimal digits only: no sign, no hex, no spaces, no unit suffix. */
static int config_parse_uint(const struct config_key *k, const char *v, uint32_t *out, char *why)
{
    char ex[48];
    if (*v == '\0') {
        return config_why(why, "\"\" is not a number");
    }
    uint64_t n = 0;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9') {
            return config_why(why, "\"%s\" is not a number", config_excerpt(ex, sizeof(ex), v));
        }
        if (n <= UINT32_MAX) {
            n = n * 10 + (uint64_t)(*p - '0');
        }
    }
    if (n < k->min) {
        return config_why(why, "%s is below the minimum %u", config_excerpt(ex, sizeof(ex), v),
                          k->min);
    }
    if (n > k->max) {
        return config_why(why, "%s is above the maximum %u", config_excerpt(ex, sizeof(ex), v),
                          k->max);
    }
    *out = (uint32_t)n;
    return 0;
}

static int config_set_string(const struct config_key *k, char *out, const char *v, char *why)
{
    size_t len = strlen(v);
    if (len >= k->size) {
        return config_why(why, "value is %zu bytes, more than the maximum %zu", len, k->size - 1);
    }
    if (k->nonempty && len == 0) {
        return config_why(why, "must not be empty");
    }
    memcpy(out, v, len + 1);
    return 0;
}

static int config_set_addr(const struct config_key *k, char *out, const char *v, char *why)
{
    int family = k->type == CONFIG_ADDR4 ? AF_INET : AF_INET6;
    uint8_t bin[16];
    char ex[48];
    if (k->type == CONFIG_ADDR) {
        if (strlen(v) >= k->size ||
            (inet_pton(AF_INET, v, bin) != 1 && inet_pton(AF_INET6, v, bin) != 1)) {
            return config_why(why, "\"%s\" is not an IPv4 or IPv6 address",
                              config_excerpt(ex, sizeof(ex), v));
        }
        return config_set_string(k, out, v, why);
    }
    if (strlen(v) >= k->size || inet_pton(family, v, bin) != 1) {
        return config_why(why, "\"%s\" is not an %s address", config_excerpt(ex, sizeof(ex), v),
                          family == AF_INET ? "IPv4" : "IPv6");
    }
    return config_set_string(k, out, v, why);
}

/* RFC 9110 token characters: a header name we will compare against. */
static bool config_is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int config_set_header(const struct config_key *k, char *out, const char *v, char *why)
{
    char ex[48];
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (!config_is_tchar(*p)) {
            return config_why(why, "\"%s\" is not an HTTP header name",
                              config_excerpt(ex, sizeof(ex), v));
        }
    }
    return config_set_string(k, out, v, why);
}

static int config_set_enum(const struct config_key *k, char *out, const char *v, char *why)
{
    for (const char *const *c = k->choices; *c; c++) {
        if (strcmp(v, *c) == 0) {
            return config_set_string(k, out, v, why);
        }
    }
    char list[96] = "";
    size_t n = 0;
    for (const char *const *c = k->choices; *c && n < sizeof(list); c++) {
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", c == k->choices ? "" : ", ", *c);
    }
    char ex[48];
    return config_why(why, "\"%s\" is not one of: %s", config_excerpt(ex, sizeof(ex), v), list);
}

/* One "addr" or "addr/bits" item; host bits past the prefix are cleared so
 * that matching is a plain masked compare. */
static bool config_parse_cidr(const char *s, size_t len, struct mk_cidr *out)
{
    char buf[INET6_ADDRSTRLEN + 8];
    if (len == 0 || len >= sizeof(buf)) {
        return false;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *slash = strchr(buf, '/');
    int bits = -1;
    if (slash) {
        *slash = '\0';
        const char *b = slash + 1;
        if (*b == '\0' || strlen(b) > 3) {
            return false;
        }
        bits = 0;
        for (; *b; b++) {
            if (*b < '0' || *b > '9') {
                return false;
            }
            bits = bits * 10 + (*b - '0');
        }
    }
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        if (bits < 0) {
            bits = 32;
        }
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        if (bits < 0) {
            bits = 128;
        }
    } else {
        return false;
    }
    if (bits > (out->family == AF_INET ? 32 : 128)) {
        return false;
    }
    out->prefix = (uint8_t)bits;
    for (int i = 0; i < 16; i++) {
        int keep = bits - i * 8;
        if (keep <= 0) {
            out->addr[i] = 0;
        } else if (keep < 8) {
            out->addr[i] &= (uint8_t)(0xff00u >> keep);
        }
    }
    return true;
}

static int config_set_cidrs(struct mk_config *cfg, const char *v, char *why)
{
    struct mk_cidr list[MK_CONFIG_MAX_PROXIES];
    uint32_t n = 0;
    const char *p = v;
    while (*p) {
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        const char *end = p + strcspn(p, ",");
        const char *last = end;
        while (last > p && (last[-1] == ' ' || last[-1] == '\t')) {
            last--;
        }
        size_t len = (size_t)(last - p);
        if (len > 0 || *end == ',') {
            char ex[48];
            char item[48];
            size_t show = len < sizeof(item) ? len : sizeof(item) - 1;
            memcpy(item, p, show);
            item[show] = '\0';
            if (n == MK_CONFIG_MAX_PROXIES) {
                return config_why(why, "more than %d entries", MK_CONFIG_MAX_PROXIES);
            }
            if (!config_parse_cidr(p, len, &list[n])) {
                return config_why(why, "\"%s\" is not an address or CIDR",
                                  config_excerpt(ex, sizeof(ex), item));
            }
            n++;
        }
        p = *end == ',' ? end + 1 : end;
    }
    memcpy(cfg->trusted_proxies, list, n * sizeof(list[0]));
    cfg->ntrusted_proxies = n;
    return 0;
}

int config_set(const struct config_key *k, struct mk_config *cfg, const char *v, char *why)
{
    char *field = (char *)cfg + k->offset;
    uint32_t n;
    int rc;
    switch (k->type) {
    case CONFIG_BOOL:
        assert(k->size == sizeof(bool));
        return config_set_bool((bool *)field, v, why);
    case CONFIG_U16:
        assert(k->size == sizeof(uint16_t) && k->max <= UINT16_MAX);
        rc = config_parse_uint(k, v, &n, why);
        if (rc == 0) {
            *(uint16_t *)field = (uint16_t)n;
        }
        return rc;
    case CONFIG_U32:
        assert(k->size == sizeof(uint32_t));
        rc = config_parse_uint(k, v, &n, why);
        if (rc == 0) {
            *(uint32_t *)field = n;
        }
        return rc;
    case CONFIG_STRING:
        return config_set_string(k, field, v, why);
    case CONFIG_ADDR4:
    case CONFIG_ADDR6:
    case CONFIG_ADDR:
        return config_set_addr(k, field, v, why);
    case CONFIG_HEADER:
        return config_set_header(k, field, v, why);
    case CONFIG_ENUM:
        return config_set_enum(k, field, v, why);
    case CONFIG_LOG_LEVEL: {
        assert(k->size == sizeof(enum mk_log_level));
        int level = mk_log_level_parse(v);
        if (level < 0) {
            char ex[48];
            return config_why(why, "\"%s\" is not one of: debug, info, warn, error",
                              config_excerpt(ex, sizeof(ex), v));
        }
        *(enum mk_log_level *)field = (enum mk_log_level)level;
        return 0;
    }
    case CONFIG_LOG_FORMAT:
        assert(k->size == sizeof(enum mk_log_format));
        if (strcmp(v, "text") == 0) {
            *(enum mk_log_format *)field = MK_LOG_TEXT;
            return 0;
        }
        if (strcmp(v, "json") == 0) {
            *(enum mk_log_format *)field = MK_LOG_JSON;
            return 0;
        }
        char ex[48];
        return config_why(why, "\"%s\" is not one of: text, json",
                          config_excerpt(ex, sizeof(ex), v));
    case CONFIG_CIDRS:
        assert(k->offset == offsetof(struct mk_config, trusted_proxies));
        return config_set_cidrs(cfg, v, why);
    }
    return config_why(why, "unhandled key type");
}

/* ---- trusted proxies ------------------------------------------------------ */

static bool config_cidr_match(const struct mk_cidr *c, const uint8_t *addr)
{
    unsigned full = c->prefix / 8u;
    unsigned rest = c->prefix % 8u;
    if (memcmp(c->addr, addr, full) != 0) {
        return false;
    }
    if (rest == 0) {
        return true;
    }
    uint8_t mask = (uint8_t)(0xff00u >> rest);
    return (addr[full] & mask) == c->addr[full];
}

bool config_is_trusted_proxy(const struct mk_config *cfg, int family, const uint8_t *addr)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    /* A dual-stack socket shows IPv4 proxies as ::ffff:a.b.c.d. */
    const uint8_t *as_v4 = NULL;
    if (family == AF_INET) {
        as_v4 = addr;
    } else if (family == AF_INET6 && memcmp(addr, v4mapped, sizeof(v4mapped)) == 0) {
        as_v4 = addr + 12;
    }
    for (uint32_t i = 0; i < cfg->ntrusted_proxies; i++) {
        const struct mk_cidr *c = &cfg->trusted_proxies[i];
        if (c->family == AF_INET && as_v4 && config_cidr_match(c, as_v4)) {
            return true;
        }
        if (c->family == AF_INET6 && family == AF_INET6 && config_cidr_match(c, addr)) {
            return true;
        }
    }
    return false;
}
