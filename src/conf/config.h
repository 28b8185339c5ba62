/* conf/config.h: the daemon's configuration, as one plain struct.
 *
 * Owns: struct mk_config, its defaults, and loading it from an INI file
 * (inih) with MIKA_<SECTION>_<KEY> environment overrides.
 * Not here: acting on the values (serve.c and the modules it configures).
 * Every key, its default and meaning is listed in docs/CONFIG.md; a unit test
 * checks the list there against config.c's key table.
 */
#ifndef MIKA_CONF_CONFIG_H
#define MIKA_CONF_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"
#include "util/log.h"

#define MK_CONFIG_MAX_PROXIES 16

/* An address/prefix of a trusted reverse proxy: "10.0.0.0/8", "::1", "127.0.0.1". */
struct mk_cidr {
    int family;        /* AF_INET or AF_INET6 */
    uint8_t addr[16];  /* network byte order; IPv4 uses the first 4 bytes */
    uint8_t prefix;    /* bits */
};

struct mk_config {
    /* [server] */
    uint16_t port;          /* port = 34000 */
    bool ipv4;              /* ipv4 = true: listen on and serve IPv4 */
    bool ipv6;              /* ipv6 = true: listen on and serve IPv6 */
    char bind4[64];         /* bind4 = 0.0.0.0 */
    char bind6[64];         /* bind6 = :: */
    uint32_t workers;       /* workers = 0 (0 = number of cores) */
    char event_loop[16];    /* event_loop = auto | epoll | poll | kqueue */
    uint32_t coalesce_ms;   /* coalesce_ms = 0: doze after a light turn (net/loop.h) */

    /* [udp] */
    uint16_t udp_port;      /* port = 0 (0 = server.port) */
    bool udp_ipv4;          /* ipv4 = true: UDP over IPv4, with server.ipv4 */
    bool udp_ipv6;          /* ipv6 = true: UDP over IPv6, with server.ipv6 */
    uint32_t udp_window;    /* connection_window = 60: seconds per connection-id key */

    /* [http] */
    uint32_t max_request_bytes;    /* max_request_bytes = 4096: request line + headers */
    uint32_t max_request_line;     /* max_request_line = 2048 */
    uint32_t max_connections;      /* max_connections = 10000, whole process */
    uint32_t max_connections_per_ip; /* max_connections_per_ip = 64 (IPv6: per /64); 0 = no cap */
    uint32_t idle_timeout;         /* idle_timeout = 30 s, keep-alive with no request */
    uint32_t header_timeout;       /* header_timeout = 10 s, from a request's first byte */
    uint32_t max_keepalive_requests; /* max_keepalive_requests = 1000 */
    uint32_t max_headers;          /* max_headers = 64 header lines */
    uint32_t max_query_params;     /* max_query_params = 64 announce parameters */

    /* [tracker] */
    uint32_t interval;         /* interval = 1800 s */
    uint32_t min_interval;     /* min_interval = 900 s */
    uint32_t numwant_default;  /* numwant_default = 30 */
    uint32_t numwant_max;      /* numwant_max = 100 */
    uint32_t expiry_factor;    /* expiry_factor = 2: a peer expires after interval x this */
    uint32_t scrape_max_hashes; /* scrape_max_hashes = 24 */
    bool allow_ip_param;       /* allow_ip_param = false: honour ipv4=/ipv6= */
    bool whitelist;            /* whitelist = true: check peer_id prefixes (BEP 20) */
    uint32_t max_upload_mibps; /* max_upload_mibps = 128: faster uploads are suspicious; 0 = off */
    uint32_t passkey_guess_limit; /* passkey_guess_limit = 64 unknown passkeys a minute per address */
    uint32_t miss_cache_seconds; /* miss_cache_seconds = 60: a "no such row" answer is kept; 0 = not kept */
    uint32_t miss_cache_size;  /* miss_cache_size = 16384 negative answers kept, oldest evicted */
    uint32_t miss_queue;       /* miss_queue = 256 distinct keys waiting for a store read */
    char peer_selection[16];   /* peer_selection = random | seeders-first | nearest | same-network */
    char geoip_city_db[4096];  /* geoip_city_db = "": GeoLite2-City or compatible .mmdb */
    char geoip_asn_db[4096];   /* geoip_asn_db = "": GeoLite2-ASN or compatible .mmdb */

    /* [proxy] */
    char real_ip_header[64];   /* real_ip_header = "" (e.g. X-Forwarded-For, X-Real-IP) */
    struct mk_cidr trusted_proxies[MK_CONFIG_MAX_PROXIES]; /* trusted = "" comma list */
    uint32_t ntrusted_proxies;

    /* [store], and [store.users], [store.torrents], [store.peers] (enum store_kind order) */
    char store_backend[16];    /* backend = sqlite | memory | postgres | mysql | redis */
    char db_path[4096];        /* path = ./mika.db (SQLite, WAL) */
    char store_dsn[1024];      /* dsn = "": server backends' URI */
    struct mk_store_kind_cfg {
        char backend[16];      /* "" = [store] backend */
        char path[4096];       /* "" = [store] path */
        char dsn[1024];        /* "" = [store] dsn */
    } store_kinds[3];          /* users, torrents, peers */

    /* [log] */
    enum mk_log_level log_level;   /* level = info */
    enum mk_log_format log_format; /* format = text | json */

    /* [api] */
    bool api_enabled;              /* enabled = true: serve the admin API */
    uint16_t api_port;             /* port = 34001 */
    char api_bind[64];             /* bind = 127.0.0.1 (IPv4 or IPv6 literal) */
    char api_cert[4096];           /* tls_cert = "": PEM path; empty = self-signed in data_dir */
    char api_key[4096];            /* tls_key = "": PEM path of tls_cert's private key */
    char api_keys[1024];           /* keys = "": comma list of bearer keys; empty = data_dir/api.key */
    char api_data_dir[4096];       /* data_dir = . */
    uint32_t api_max_body_bytes;   /* max_body_bytes = 1048576 */
    uint32_t api_max_connections;  /* max_connections = 64 */
    char api_announce_url[256];    /* announce_url = "": base of announce URLs in answers */

    /* [bonus]: points earned by seeding, booked on every announce (acct/rules.h) */
    uint32_t bonus_points_per_hour;  /* points_per_hour = 1, per seeded torrent; 0 = off */
    uint32_t bonus_size_unit_mib;    /* size_unit_mib = 1024: torrent size counted in these */
    uint32_t bonus_size_weight;      /* size_weight = 0 (per-mille per unit) */
    uint32_t bonus_size_units_max;   /* size_units_max = 10 */
    uint32_t bonus_seeder_weight;    /* seeder_weight = 0 (per-mille per other seeder) */

    /* [journal]: the books' write-ahead journal (docs/ACCOUNTING.md) */
    bool journal_enabled;            /* enabled = true; false keeps no books (benchmarks only) */
    char journal_dir[4096];          /* dir = "" (<store.path>.journal) */
    char journal_fsync[16];          /* fsync = interval | always | never */
    uint32_t journal_fsync_ms;       /* fsync_interval_ms = 1000 */
    uint32_t journal_max_mib;        /* max_mib = 1024: backlog past this refuses announces */
    uint32_t journal_apply_delay_ms; /* apply_delay_ms: how long the books may trail the answers */

    /* [hnr]: hit-and-run, judged when the API lists a user's history */
    uint32_t hnr_seed_hours;         /* seed_hours = 72; 0 = no hit-and-run rule */
    uint32_t hnr_window_days;        /* window_days = 14 after completing */
    uint32_t hnr_ratio;              /* ratio = 1000 (per-mille: 1.0) on the torrent */

    /* [cluster]: several nodes sharing a postgres or redis store (docs/STORES.md) */
    uint32_t cluster_node_id;        /* node_id = 0: a single node; 1..65535 in a cluster */
    uint32_t cluster_counts_seconds; /* counts_seconds = 2: swarm counts shared this often */
};

/* Fills cfg with the documented defaults. */
void config_defaults(struct mk_config *cfg);

/* Reads path (NULL: no file, defaults only), then applies MIKA_<SECTION>_<KEY>
 * environment variables from envp (NULL-terminated, usually environ; NULL: none),
 * on top of what cfg already holds (start from config_defaults()), then checks
 * the keys against each other. An unknown section or key, or a bad value,
 * fails with MK_EINVAL and a message that names the key and the line
 * ("mika.ini:12: tracker.interval: ..."), or the variable
 * ("MIKA_TRACKER_INTERVAL: ..."); an unreadable file is MK_EIO. On failure cfg
 * is unchanged. */
int config_load(struct mk_config *cfg, const char *path, char *const *envp,
                struct mk_errbuf *eb);

/* True when addr (family AF_INET/AF_INET6, bytes in network order) lies in
 * one of the trusted proxy ranges. */
/* The backend, SQLite path and DSN of one kind (enum store_kind's bit
 * index: 0 users, 1 torrents, 2 peers), [store]'s where the kind's own
 * section leaves them empty. */
void config_store_kind(const struct mk_config *cfg, unsigned kind, const char **backend,
                       const char **path, const char **dsn);

bool config_is_trusted_proxy(const struct mk_config *cfg, int family, const uint8_t *addr);

/* Visits every known key as "section.key" with its default rendered as text;
 * used by the docs test and `mika serve --help`. */
void config_each_key(void (*fn)(const char *section, const char *key, const char *def,
                                const char *doc, void *arg),
                     void *arg);

#endif /* MIKA_CONF_CONFIG_H */
