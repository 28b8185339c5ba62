/* conf/config.c: the key table, and loading struct mk_config from INI and env.
 *
 * Owns: config_keys[], the one table that drives defaults, the INI handler,
 * the MIKA_<SECTION>_<KEY> overrides, config_each_key() (docs, --help) and the
 * cross-key checks.
 * Not here: acting on the values (serve.c and the modules it configures);
 * parsing one value (config_values.c).
 * Invariants: a row's default text parses with the row's own setter (the
 * defaults are produced that way, so docs and code cannot drift);
 * config_load() changes the caller's struct only when everything succeeded.
 */
#include "conf/config.h"

#include <assert.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "conf/config_key.h"

/* One row; extra designators (.choices, .nonempty) go after the doc text. */
#define CONFIG_ROW(sec, k, t, f, lo, hi, d, text, ...)                                             \
    {.section = (sec), .key = (k), .type = (t), .offset = offsetof(struct mk_config, f),           \
     .size = sizeof(((struct mk_config *)0)->f), .min = (lo), .max = (hi), .def = (d),             \
     .doc = (text), __VA_ARGS__}

static const char *const config_event_loops[] = {"auto", "epoll", "poll", "kqueue", NULL};
static const char *const config_backends[] = {"sqlite", "memory", "postgres", "mysql", "redis",
                                              NULL};
/* A kind's backend may be left empty: it then uses [store]'s. */
static const char *const config_kind_backends[] = {"", "sqlite", "memory", "postgres", "mysql",
                                                   "redis", NULL};

/* The three [store.<kind>] sections have the same keys. */
#define CONFIG_STORE_KIND(sec, i)                                                                  \
    CONFIG_ROW(sec, "backend", CONFIG_ENUM, store_kinds[i].backend, 0, 0, "",                     \
               "backend of this kind; empty = [store] backend", .choices = config_kind_backends), \
    CONFIG_ROW(sec, "path", CONFIG_STRING, store_kinds[i].path, 0, 0, "",                         \
               "sqlite: database file of this kind; empty = [store] path"),                       \
    CONFIG_ROW(sec, "dsn", CONFIG_STRING, store_kinds[i].dsn, 0, 0, "",                           \
               "server backends: connection URI of this kind; empty = [store] dsn")
static const char *const config_peer_selections[] = {"random", "seeders-first", "nearest",
                                                     "same-network", NULL};
static const char *const config_fsync_policies[] = {"interval", "always", "never", NULL};

static const struct config_key config_keys[] = {
    CONFIG_ROW("server", "port", CONFIG_U16, port, 1, 65535, "34000",
               "TCP port of the HTTP tracker"),
    CONFIG_ROW("server", "ipv4", CONFIG_BOOL, ipv4, 0, 0, "true",
               "listen on and serve IPv4"),
    CONFIG_ROW("server", "ipv6", CONFIG_BOOL, ipv6, 0, 0, "true",
               "listen on and serve IPv6"),
    CONFIG_ROW("server", "bind4", CONFIG_ADDR4, bind4, 0, 0, "0.0.0.0",
               "IPv4 address to listen on"),
    CONFIG_ROW("server", "bind6", CONFIG_ADDR6, bind6, 0, 0, "::",
               "IPv6 address to listen on"),
    CONFIG_ROW("server", "workers", CONFIG_U32, workers, 0, 256, "0",
               "worker threads, each with its own event loop; 0 = number of cores"),
    CONFIG_ROW("server", "event_loop", CONFIG_ENUM, event_loop, 0, 0, "auto",
               "event loop backend: auto, epoll, poll or kqueue", .choices = config_event_loops),
    CONFIG_ROW("server", "coalesce_ms", CONFIG_U32, coalesce_ms, 0, 50, "0",
               "after a turn with fewer than 4 ready sockets, a worker sleeps this long"
               " before waiting again (fewer wake-ups at moderate load); 0 = off"),

    CONFIG_ROW("udp", "port", CONFIG_U16, udp_port, 0, 65535, "0",
               "UDP port of the BEP 15 tracker; 0 = server.port"),
    CONFIG_ROW("udp", "ipv4", CONFIG_BOOL, udp_ipv4, 0, 0, "true",
               "serve UDP over IPv4 (when server.ipv4 is on)"),
    CONFIG_ROW("udp", "ipv6", CONFIG_BOOL, udp_ipv6, 0, 0, "true",
               "serve UDP over IPv6 (when server.ipv6 is on)"),
    CONFIG_ROW("udp", "connection_window", CONFIG_U32, udp_window, 1, 600, "60",
               "seconds per connection-id key; an id is accepted in its window and the next"),

    CONFIG_ROW("http", "max_request_bytes", CONFIG_U32, max_request_bytes, 256, 65536, "4096",
               "largest request line plus headers, in bytes"),
    CONFIG_ROW("http", "max_request_line", CONFIG_U32, max_request_line, 64, 65536, "2048",
               "largest request line, in bytes"),
    CONFIG_ROW("http", "max_connections", CONFIG_U32, max_connections, 1, 1000000, "10000",
               "open tracker connections in the whole process"),
    CONFIG_ROW("http", "max_connections_per_ip", CONFIG_U32, max_connections_per_ip, 0, 1000000,
               "64", "open tracker connections from one address (IPv6: one /64); 0 = no cap"),
    CONFIG_ROW("http", "idle_timeout", CONFIG_U32, idle_timeout, 1, 3600, "30",
               "seconds a keep-alive connection may wait for its next request"),
    CONFIG_ROW("http", "header_timeout", CONFIG_U32, header_timeout, 1, 3600, "10",
               "seconds from a request's first byte to its complete headers"),
    CONFIG_ROW("http", "max_keepalive_requests", CONFIG_U32, max_keepalive_requests, 1, 1000000,
               "1000", "requests served on one connection before it is closed"),
    CONFIG_ROW("http", "max_headers", CONFIG_U32, max_headers, 8, 1024, "64",
               "header lines in one request; more are answered 431"),
    CONFIG_ROW("http", "max_query_params", CONFIG_U32, max_query_params, 8, 1024, "64",
               "parameters in one announce query; more are refused"),

    CONFIG_ROW("tracker", "interval", CONFIG_U32, interval, 1, 86400, "1800",
               "seconds between announces asked of clients"),
    CONFIG_ROW("tracker", "min_interval", CONFIG_U32, min_interval, 1, 86400, "900",
               "seconds clients must wait at least between announces"),
    CONFIG_ROW("tracker", "numwant_default", CONFIG_U32, numwant_default, 1, 1000, "30",
               "peers returned when the client does not send numwant"),
    CONFIG_ROW("tracker", "numwant_max", CONFIG_U32, numwant_max, 1, 1000, "100",
               "most peers returned in one answer, whatever numwant says"),
    CONFIG_ROW("tracker", "expiry_factor", CONFIG_U32, expiry_factor, 1, 100, "2",
               "a peer expires after interval x expiry_factor seconds without announcing"),
    CONFIG_ROW("tracker", "scrape_max_hashes", CONFIG_U32, scrape_max_hashes, 1, 1000, "24",
               "most info_hash parameters in one scrape"),
    CONFIG_ROW("tracker", "allow_ip_param", CONFIG_BOOL, allow_ip_param, 0, 0, "false",
               "honour the ipv4= and ipv6= announce parameters (BEP 7; ip= is ignored)"),
    CONFIG_ROW("tracker", "whitelist", CONFIG_BOOL, whitelist, 0, 0, "true",
               "admit only clients whose peer_id starts with a whitelisted prefix (BEP 20)"),
    CONFIG_ROW("tracker", "max_upload_mibps", CONFIG_U32, max_upload_mibps, 0, 1000000, "128",
               "MiB/s: an upload reported faster is suspicious and not credited; 0 = no limit"),
    CONFIG_ROW("tracker", "passkey_guess_limit", CONFIG_U32, passkey_guess_limit, 0, 4095, "64",
               "unknown passkeys a minute from one address before it is refused; 0 = off"),
    CONFIG_ROW("tracker", "miss_cache_seconds", CONFIG_U32, miss_cache_seconds, 0, 86400, "60",
               "seconds a passkey or info_hash the store does not have is answered without"
               " asking it again; 0 = ask every time (concurrent misses still share a read)"),
    CONFIG_ROW("tracker", "miss_cache_size", CONFIG_U32, miss_cache_size, 1, 10000000, "16384",
               "unknown passkeys and info_hashes remembered; the oldest is forgotten first"),
    CONFIG_ROW("tracker", "miss_queue", CONFIG_U32, miss_queue, 1, 1000000, "256",
               "distinct keys waiting for a store read; past it a miss gets try again later"),
    CONFIG_ROW("tracker", "peer_selection", CONFIG_ENUM, peer_selection, 0, 0, "random",
               "which peers an announce gets: random, seeders-first, nearest or same-network"
               " (docs/PEER_SELECTION.md)", .choices = config_peer_selections),
    CONFIG_ROW("tracker", "geoip_city_db", CONFIG_STRING, geoip_city_db, 0, 0, "",
               "MaxMind DB file with locations (GeoLite2-City or compatible) for nearest"),
    CONFIG_ROW("tracker", "geoip_asn_db", CONFIG_STRING, geoip_asn_db, 0, 0, "",
               "MaxMind DB file with autonomous systems (GeoLite2-ASN or compatible)"
               " for same-network"),

    CONFIG_ROW("proxy", "real_ip_header", CONFIG_HEADER, real_ip_header, 0, 0, "",
               "header carrying the client address (X-Forwarded-For, X-Real-IP); empty = none"),
    CONFIG_ROW("proxy", "trusted", CONFIG_CIDRS, trusted_proxies, 0, 0, "",
               "comma list of proxy addresses or CIDRs whose real_ip_header is believed"),

    CONFIG_ROW("store", "backend", CONFIG_ENUM, store_backend, 0, 0, "sqlite",
               "where users, torrents and peers are kept: sqlite, memory, postgres, mysql or redis",
               .choices = config_backends),
    CONFIG_ROW("store", "path", CONFIG_STRING, db_path, 0, 0, "./mika.db",
               "SQLite database file, created if absent; also names the journal directory",
               .nonempty = true),
    CONFIG_ROW("store", "dsn", CONFIG_STRING, store_dsn, 0, 0, "",
               "server backends: postgresql://, mysql:// or redis:// URI (docs/STORES.md)"),
    CONFIG_STORE_KIND("store.users", 0),
    CONFIG_STORE_KIND("store.torrents", 1),
    CONFIG_STORE_KIND("store.peers", 2),

    CONFIG_ROW("log", "level", CONFIG_LOG_LEVEL, log_level, 0, 0, "info",
               "least severe level written: debug, info, warn or error"),
    CONFIG_ROW("log", "format", CONFIG_LOG_FORMAT, log_format, 0, 0, "text",
               "log line format: text or json"),

    CONFIG_ROW("api", "enabled", CONFIG_BOOL, api_enabled, 0, 0, "true",
               "serve the admin REST API (HTTPS, TLS 1.2+)"),
    CONFIG_ROW("api", "port", CONFIG_U16, api_port, 1, 65535, "34001",
               "TCP port of the admin API"),
    CONFIG_ROW("api", "bind", CONFIG_ADDR, api_bind, 0, 0, "127.0.0.1",
               "IPv4 or IPv6 address the admin API listens on"),
    /* tls_cert/tls_key, not cert/key: MIKA_API_KEY is the CLI's bearer key. */
    CONFIG_ROW("api", "tls_cert", CONFIG_STRING, api_cert, 0, 0, "",
               "PEM certificate file; empty = a self-signed one in data_dir"),
    CONFIG_ROW("api", "tls_key", CONFIG_STRING, api_key, 0, 0, "",
               "PEM private key file of tls_cert; empty with an empty tls_cert"),
    CONFIG_ROW("api", "keys", CONFIG_STRING, api_keys, 0, 0, "",
               "comma list of bearer keys; empty = one generated into data_dir/api.key"),
    CONFIG_ROW("api", "data_dir", CONFIG_STRING, api_data_dir, 0, 0, ".",
               "directory of the generated certificate, key and api.key", .nonempty = true),
    CONFIG_ROW("api", "max_body_bytes", CONFIG_U32, api_max_body_bytes, 1024, 67108864,
               "1048576", "largest request body the admin API accepts, in bytes"),
    CONFIG_ROW("api", "max_connections", CONFIG_U32, api_max_connections, 1, 10000, "64",
               "open admin API connections; more are refused at accept"),
    CONFIG_ROW("api", "announce_url", CONFIG_STRING, api_announce_url, 0, 0, "",
               "base of announce URLs in API answers; empty = http://<hostname>:<server.port>"),

    CONFIG_ROW("bonus", "points_per_hour", CONFIG_U32, bonus_points_per_hour, 0, 1000000, "1",
               "bonus points per hour of seeding one torrent; 0 = no bonus points"),
    CONFIG_ROW("bonus", "size_unit_mib", CONFIG_U32, bonus_size_unit_mib, 1, 1048576, "1024",
               "torrent size is counted in units of this many MiB"),
    CONFIG_ROW("bonus", "size_weight", CONFIG_U32, bonus_size_weight, 0, 1000000, "0",
               "thousandths added to the rate per size unit: rate x (1 + weight/1000 x units)"),
    CONFIG_ROW("bonus", "size_units_max", CONFIG_U32, bonus_size_units_max, 0, 1000000, "10",
               "size units beyond this add nothing"),
    CONFIG_ROW("bonus", "seeder_weight", CONFIG_U32, bonus_seeder_weight, 0, 1000000, "0",
               "thousandths per other seeder: rate / (1 + weight/1000 x (seeders - 1))"),

    CONFIG_ROW("journal", "enabled", CONFIG_BOOL, journal_enabled, 0, 0, "true",
               "keep the books; false answers announces without them (benchmarks only)"),
    CONFIG_ROW("journal", "dir", CONFIG_STRING, journal_dir, 0, 0, "",
               "directory of the journal segments; empty = <store.path>.journal"),
    CONFIG_ROW("journal", "fsync", CONFIG_ENUM, journal_fsync, 0, 0, "interval",
               "interval, always or never: when segments are flushed to the disk",
               .choices = config_fsync_policies),
    CONFIG_ROW("journal", "fsync_interval_ms", CONFIG_U32, journal_fsync_ms, 1, 3600000, "1000",
               "with fsync = interval: at most this long between flushes"),
    CONFIG_ROW("journal", "max_mib", CONFIG_U32, journal_max_mib, 1, 1048576, "1024",
               "MiB of segments waiting for the store past which announces are refused"),
    CONFIG_ROW("journal", "apply_delay_ms", CONFIG_U32, journal_apply_delay_ms, 0, 60000, "5000",
               "longest wait before answered announces are applied to the store; bigger groups"
               " cost the store less per announce"),

    CONFIG_ROW("hnr", "seed_hours", CONFIG_U32, hnr_seed_hours, 0, 100000, "72",
               "hours a snatcher must seed a torrent; 0 = no hit-and-run rule"),
    CONFIG_ROW("hnr", "window_days", CONFIG_U32, hnr_window_days, 0, 3650, "14",
               "days after completing to seed them or reach the ratio"),
    CONFIG_ROW("hnr", "ratio", CONFIG_U32, hnr_ratio, 0, 1000000, "1000",
               "thousandths: uploaded / downloaded on the torrent that also clears it"),

    CONFIG_ROW("cluster", "node_id", CONFIG_U32, cluster_node_id, 0, 65535, "0",
               "this node's id, 1..65535, among nodes sharing a postgres or redis users store;"
               " 0 = a single node"),
    CONFIG_ROW("cluster", "counts_seconds", CONFIG_U32, cluster_counts_seconds, 1, 60, "2",
               "with node_id: seconds between publishing this node's swarm counts and reading"
               " the other nodes'"),
};

#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))
#define CONFIG_API_KEY_MIN 16
#define CONFIG_API_KEY_MAX 128

static const struct config_key *config_find(const char *section, const char *key)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        if (strcmp(config_keys[i].section, section) == 0 && strcmp(config_keys[i].key, key) == 0) {
            return &config_keys[i];
        }
    }
    return NULL;
}

void config_defaults(struct mk_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        char why[CONFIG_WHY_MAX];
        int rc = config_set(&config_keys[i], cfg, config_keys[i].def, why);
        assert(rc == 0 && "a default in config_keys[] does not parse");
        (void)rc;
    }
}

void config_each_key(void (*fn)(const char *section, const char *key, const char *def,
                                const char *doc, void *arg),
                     void *arg)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        fn(config_keys[i].section, config_keys[i].key, config_keys[i].def, config_keys[i].doc,
           arg);
    }
}

/* ---- INI file ---------------------------------------------------------- */

struct config_file {
    FILE *f;
    int lineno;      /* of the line last handed to inih */
    bool too_long;   /* the reader stopped at an over-long line */
    bool nul;        /* the reader stopped at a line holding a NUL byte */
    struct mk_config *cfg;
    const char *path;
    struct mk_errbuf *eb;
    int err;         /* first handler error, 0 if none */
    int err_line;
};

/* inih's reader: one physical line per call, so lineno stays exact. Leading
 * blanks are dropped, which turns off inih's multi-line continuation: a value
 * never silently swallows the next line. */
static char *config_read_line(char *str, int num, void *stream)
{
    struct config_file *cf = stream;
    if (cf->too_long || cf->nul || num < 2) {
        return NULL;
    }
    /* Not fgets: a NUL byte would end the line early and hide the rest of
     * it (a "[section]" after it is lost without a word). */
    size_t len = 0;
    int c = 0;
    while (len < (size_t)num - 1 && (c = getc(cf->f)) != EOF) {
        str[len++] = (char)c;
        cf->nul |= c == '\0';
        if (c == '\n') {
            break;
        }
    }
    str[len] = '\0';
    if (len == 0) {
        return NULL;
    }
    cf->lineno++;
    if (cf->nul) {
        return NULL;
    }
    if (str[len - 1] != '\n' && !feof(cf->f)) {
        cf->too_long = true;
        return NULL;
    }
    size_t skip = strspn(str, " \t");
    if (skip > 0) {
        memmove(str, str + skip, len - skip + 1);
    }
    return str;
}

static int config_ini_handler(void *user, const char *section, const char *name,
                              const char *value)
{
    struct config_file *cf = user;
    if (cf->err) {
        return 0;
    }
    const struct config_key *k = config_find(section, name);
    if (!k) {
        char ex[48];
        char sx[48];
        cf->err_line = cf->lineno;
        if (*section == '\0') {
            cf->err = mk_fail(cf->eb, MK_EINVAL,
                              "%s:%d: unknown key \"%s\" (outside any [section])", cf->path,
                              cf->lineno, config_excerpt(ex, sizeof(ex), name));
        } else {
            cf->err = mk_fail(cf->eb, MK_EINVAL, "%s:%d: unknown key \"%s.%s\"", cf->path,
                              cf->lineno, config_excerpt(sx, sizeof(sx), section),
                              config_excerpt(ex, sizeof(ex), name));
        }
        return 0;
    }
    /* Quotes are optional around any value: `real_ip_header = ""` is empty. */
    char unq[256];
    size_t len = strlen(value);
    if (len >= 2 && value[0] == '"' && value[len - 1] == '"' && len - 2 < sizeof(unq)) {
        memcpy(unq, value + 1, len - 2);
        unq[len - 2] = '\0';
        value = unq;
    }
    char why[CONFIG_WHY_MAX];
    if (config_set(k, cf->cfg, value, why) != 0) {
        cf->err_line = cf->lineno;
        cf->err = mk_fail(cf->eb, MK_EINVAL, "%s:%d: %s.%s: %s", cf->path, cf->lineno, k->section,
                          k->key, why);
        return 0;
    }
    return 1;
}

static int config_load_file(struct mk_config *cfg, const char *path, struct mk_errbuf *eb)
{
    struct config_file cf = {.cfg = cfg, .path = path, .eb = eb};
    cf.f = fopen(path, "r");
    if (!cf.f) {
        return mk_fail(eb, MK_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    int rc = ini_parse_stream(config_read_line, &cf, config_ini_handler, &cf);
    bool read_error = ferror(cf.f) != 0;
    fclose(cf.f);
    /* inih reports the first bad line, ours or its own syntax error. */
    if (rc > 0 && (!cf.err || rc < cf.err_line)) {
        return mk_fail(eb, MK_EINVAL, "%s:%d: syntax error (expected [section] or key = value)",
                       path, rc);
    }
    if (cf.err) {
        return cf.err;
    }
    if (rc < 0) {
        return mk_fail(eb, MK_ENOMEM, "%s: inih failed (%d)", path, rc);
    }
    if (cf.nul) {
        return mk_fail(eb, MK_EINVAL, "%s:%d: NUL byte in the line (is this a text file?)", path,
                       cf.lineno);
    }
    if (cf.too_long) {
        return mk_fail(eb, MK_EINVAL,
                       "%s:%d: line longer than %d bytes (set long values through the "
                       "environment)",
                       path, cf.lineno, ini_max_line - 2);
    }
    if (read_error) {
        return mk_fail(eb, MK_EIO, "%s: read error", path);
    }
    return 0;
}

/* ---- environment ------------------------------------------------------- */

/* MIKA_<SECTION>_<KEY>, upper-cased; false if it does not fit. */
static bool config_env_name(const struct config_key *k, char *out, size_t cap)
{
    int n = snprintf(out, cap, "MIKA_%s_%s", k->section, k->key);
    if (n < 0 || (size_t)n >= cap) {
        return false;
    }
    for (char *p = out; *p; p++) {
        if (*p >= 'a' && *p <= 'z') {
            *p = (char)(*p - 'a' + 'A');
        } else if (*p == '.') {
            *p = '_'; /* [store.users] backend: MIKA_STORE_USERS_BACKEND */
        }
    }
    return true;
}

static bool config_env_has_section_prefix(const char *name, size_t len)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        char prefix[64];
        int n = snprintf(prefix, sizeof(prefix), "MIKA_%s_", config_keys[i].section);
        for (int j = 0; j < n; j++) {
            if (prefix[j] >= 'a' && prefix[j] <= 'z') {
                prefix[j] = (char)(prefix[j] - 'a' + 'A');
            } else if (prefix[j] == '.') {
                prefix[j] = '_';
            }
        }
        if (n > 0 && len >= (size_t)n && memcmp(name, prefix, (size_t)n) == 0) {
            return true;
        }
    }
    return false;
}

/* Variables of `mika client` that share the MIKA_API_ prefix with [api]. */
static bool config_env_is_client_var(const char *name, size_t len)
{
    static const char *const client_vars[] = {"MIKA_API_URL", "MIKA_API_KEY", "MIKA_API_CERT",
                                              "MIKA_API_CACERT", NULL};
    for (const char *const *v = client_vars; *v; v++) {
        if (strlen(*v) == len && memcmp(*v, name, len) == 0) {
            return true;
        }
    }
    return false;
}

static int config_load_env(struct mk_config *cfg, char *const *envp, struct mk_errbuf *eb)
{
    for (char *const *e = envp; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (strncmp(*e, "MIKA_", 5) != 0 || !eq) {
            continue;
        }
        size_t nlen = (size_t)(eq - *e);
        const struct config_key *k = NULL;
        for (size_t i = 0; i < CONFIG_NKEYS && !k; i++) {
            char want[96];
            if (config_env_name(&config_keys[i], want, sizeof(want)) && strlen(want) == nlen &&
                memcmp(want, *e, nlen) == 0) {
                k = &config_keys[i];
            }
        }
        char ex[64];
        char name[64];
        size_t show = nlen < sizeof(name) ? nlen : sizeof(name) - 1;
        memcpy(name, *e, show);
        name[show] = '\0';
        if (!k) {
            if (config_env_has_section_prefix(*e, nlen) && !config_env_is_client_var(*e, nlen)) {
                return mk_fail(eb, MK_EINVAL, "%s: unknown variable (no such key)",
                               config_excerpt(ex, sizeof(ex), name));
            }
            continue; /* MIKA_BIN, MIKA_API_URL...: other tools' variables */
        }
        char why[CONFIG_WHY_MAX];
        if (config_set(k, cfg, eq + 1, why) != 0) {
            return mk_fail(eb, MK_EINVAL, "%s: %s", name, why);
        }
    }
    return 0;
}

/* ---- cross-key checks ---------------------------------------------------- */

/* A bearer key: RFC 6750 token68 characters, long enough not to be guessed. */
static bool config_is_bearer_key(const char *p, size_t len)
{
    if (len < CONFIG_API_KEY_MIN || len > CONFIG_API_KEY_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c != '\0' && strchr("-._~+/=", c) != NULL))) {
            return false;
        }
    }
    return true;
}

static int config_check_api(const struct mk_config *cfg, struct mk_errbuf *eb)
{
    if ((cfg->api_cert[0] == '\0') != (cfg->api_key[0] == '\0')) {
        return mk_fail(eb, MK_EINVAL, "api.tls_cert and api.tls_key must be given together");
    }
    const char *u = cfg->api_announce_url;
    if (*u && strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) {
        return mk_fail(eb, MK_EINVAL, "api.announce_url: must start with http:// or https://");
    }
    for (const char *p = cfg->api_keys; *p;) {
        p += strspn(p, " \t");
        size_t len = strcspn(p, ",");
        size_t trimmed = len;
        while (trimmed > 0 && (p[trimmed - 1] == ' ' || p[trimmed - 1] == '\t')) {
            trimmed--;
        }
        if ((trimmed > 0 || p[len] == ',') && !config_is_bearer_key(p, trimmed)) {
            return mk_fail(eb, MK_EINVAL,
                           "api.keys: each key must be %d..%d characters of"
                           " [A-Za-z0-9-._~+/=]",
                           CONFIG_API_KEY_MIN, CONFIG_API_KEY_MAX);
        }
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    return 0;
}

void config_store_kind(const struct mk_config *cfg, unsigned kind, const char **backend,
                       const char **path, const char **dsn)
{
    const struct mk_store_kind_cfg *k = &cfg->store_kinds[kind < 3 ? kind : 0];
    *backend = k->backend[0] ? k->backend : cfg->store_backend;
    *path = k->path[0] ? k->path : cfg->db_path;
    *dsn = k->dsn[0] ? k->dsn : cfg->store_dsn;
}

/* A server backend with no address would only fail later, at open, with
 * the driver's words; say which key is missing instead. */
static int config_check_store(const struct mk_config *cfg, struct mk_errbuf *eb)
{
    static const char *const kinds[] = {"users", "torrents", "peers"};
    for (unsigned i = 0; i < 3; i++) {
        const char *backend, *path, *dsn;
        config_store_kind(cfg, i, &backend, &path, &dsn);
        bool server = strcmp(backend, "sqlite") != 0 && strcmp(backend, "memory") != 0;
        if (server && !dsn[0]) {
            return mk_fail(eb, MK_EINVAL,
                           "store.%s: backend \"%s\" needs a dsn (set store.%s.dsn or store.dsn)",
                           kinds[i], backend, kinds[i]);
        }
    }
    return 0;
}

/* Nodes share users, torrents and change notices through the users' store:
 * only a server store that every node reaches can carry them. */
static int config_check_cluster(const struct mk_config *cfg, struct mk_errbuf *eb)
{
    if (cfg->cluster_node_id == 0) {
        return 0;
    }
    const char *backend, *path, *dsn;
    config_store_kind(cfg, 0, &backend, &path, &dsn);
    if (strcmp(backend, "postgres") != 0 && strcmp(backend, "redis") != 0) {
        return mk_fail(eb, MK_EINVAL,
                       "cluster.node_id = %u needs the users store on postgres or redis (shared"
                       " by every node), not \"%s\"",
                       cfg->cluster_node_id, backend);
    }
    return 0;
}

static int config_check(const struct mk_config *cfg, struct mk_errbuf *eb)
{
    if (cfg->min_interval > cfg->interval) {
        return mk_fail(eb, MK_EINVAL, "tracker.min_interval (%u) is above tracker.interval (%u)",
                       cfg->min_interval, cfg->interval);
    }
    if (cfg->numwant_default > cfg->numwant_max) {
        return mk_fail(eb, MK_EINVAL,
                       "tracker.numwant_default (%u) is above tracker.numwant_max (%u)",
                       cfg->numwant_default, cfg->numwant_max);
    }
    if (cfg->max_request_line > cfg->max_request_bytes) {
        return mk_fail(eb, MK_EINVAL,
                       "http.max_request_line (%u) is above http.max_request_bytes (%u)",
                       cfg->max_request_line, cfg->max_request_bytes);
    }
    if (!cfg->ipv4 && !cfg->ipv6) {
        return mk_fail(eb, MK_EINVAL, "server.ipv4 and server.ipv6 are both off");
    }
    int rc = config_check_store(cfg, eb);
    if (rc == 0) {
        rc = config_check_cluster(cfg, eb);
    }
    return rc ? rc : config_check_api(cfg, eb);
}

int config_load(struct mk_config *cfg, const char *path, char *const *envp,
                struct mk_errbuf *eb)
{
    /* Work on a copy so that a failed load leaves the caller's config whole
     * (a SIGHUP reload with a typo must not half-apply). */
    struct mk_config next = *cfg;
    int rc = 0;
    if (path) {
        rc = config_load_file(&next, path, eb);
    }
    if (rc == 0 && envp) {
        rc = config_load_env(&next, envp, eb);
    }
    if (rc == 0) {
        rc = config_check(&next, eb);
    }
    if (rc == 0) {
        *cfg = next;
    }
    return rc;
}
