/* store/store.h: the store interfaces, one per kind of state.
 *
 * Owns: the row structs that cross the store boundary and the ops tables a
 * backend fills (shaped like SQLite's sqlite3_vfs: a versioned table of
 * function pointers plus an opaque context). Callers never touch ops->
 * directly: they use the store_* wrappers below, which check the version,
 * answer MK_ENOTSUP for a missing optional method, and log failures.
 *
 * Threads: a store context is used by one thread at a time (the loader at
 * start-up and on SIGHUP, the flusher, the admin API, and the resolver of
 * keys that miss memory: each its own context). Every method may block; none
 * is ever called from an event-loop worker.
 *
 * Kinds: users, torrents and peers may each live in their own backend
 * ([store.users], [store.torrents], [store.peers] in the config); the books
 * go with the users. The user store, torrent store, peer store and
 * accounting sink are groups of struct store_ops's methods (docs/STORES.md
 * lists them): one table, so a backend holding every kind shares its
 * connection among them; store/split.c routes each group to its kind's. A backend opened for some kinds may still create its
 * whole schema; it is only ever asked about the kinds it was opened for.
 *
 * Backends: "sqlite" (store/sqlite.c), "postgres" (store/pg.c), "mysql"
 * (store/mysql.c), "redis" (store/redis.c); docs/STORES.md shows each layout.
 */
#ifndef MIKA_STORE_STORE_H
#define MIKA_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define MK_PASSKEY_MAX 64    /* bytes; passkeys are [A-Za-z0-9], 32 by convention */
#define MK_REASON_MAX 128    /* deletion reason shown to clients */
#define MK_PREFIX_MAX 20     /* a peer_id prefix is at most the whole peer_id */
#define MK_CLIENT_NAME_MAX 64

/* Multipliers are per-mille (acct/rules.h): 1000 is 1.0x. A row whose
 * has_mults is false (a loader or caller that does not know them) counts as
 * 1.0x everywhere, never as 0. */
struct user_row {
    uint32_t id;
    char passkey[MK_PASSKEY_MAX + 1]; /* NUL-terminated */
    bool enabled;                     /* false: every announce refused */
    bool can_download;                /* false: may seed, may not leech */
    bool has_mults;
    uint32_t class_up, class_down;       /* the user's class's multipliers */
    uint32_t personal_up, personal_down; /* the user's own */
};

struct torrent_row {
    uint32_t id;
    uint8_t info_hash[20];
    bool enabled;                     /* false: refused, "torrent disabled" */
    bool deleted;                     /* true: "unregistered torrent: <reason>" */
    char reason[MK_REASON_MAX + 1];   /* why it was deleted; may be empty */
    uint32_t snatches;                /* completed downloads, once per user */
    bool has_mults;                   /* false: 1.0x, not freeleech */
    bool freeleech;                   /* downloads on it are not counted */
    uint32_t up_mult, down_mult;      /* per-mille */
    uint64_t size;                    /* total bytes, 0 if unknown (bonus points) */
};

struct whitelist_row {
    uint8_t prefix[MK_PREFIX_MAX];    /* raw bytes, compared with the peer_id start */
    uint8_t prefix_len;               /* 1..MK_PREFIX_MAX */
    char name[MK_CLIENT_NAME_MAX + 1];
};

/* The BEP 20 peer_id prefixes ("-XX" then a version) of widely used
 * clients that every backend seeds its whitelist with once, when its schema
 * is created; docs/STORES.md lists them. Operators edit them afterwards and
 * a reopen never re-adds them. */
struct store_client_prefix {
    const char *prefix;
    const char *name;
};
extern const struct store_client_prefix store_default_whitelist[];
extern const size_t store_default_whitelist_len;

/* One user's snatch of one torrent: recorded once, whatever the client sends.
 * Loaders fill info_hash from the torrent (a join), so the caller can find the
 * torrent without a lookup by id; snatches of torrents that no longer exist
 * are not returned. A backend that holds users but not torrents (a split
 * config) leaves info_hash all zero and the caller resolves torrent_id. */
struct snatch_row {
    uint32_t user_id;
    uint32_t torrent_id;
    int64_t at; /* unix seconds */
    uint8_t info_hash[20];
};

/* One peer as the store keeps it: the baseline a restart needs so that the
 * first announce after it is credited its true delta. */
struct peer_row {
    uint32_t torrent_id;
    uint32_t user_id;
    uint8_t info_hash[20];  /* filled by load_peers (a join, or kept with the row by a
                             * peers-only backend); all zero: the caller resolves
                             * torrent_id. Writers may leave it zero. */
    uint8_t peer_id[20];
    uint8_t family;         /* 4 or 6 */
    uint8_t ip[16];         /* network order; IPv4 in the first 4 bytes */
    uint16_t port;
    uint64_t uploaded;      /* last reported, cumulative for the client session */
    uint64_t downloaded;
    bool seeder;
    bool partial;           /* BEP 21 partial seed */
    bool gone;              /* the peer left (event=stopped) */
    int64_t last_seen;      /* unix seconds */
    int64_t version;        /* unix microseconds of the report: workers' segments
                             * are applied in any order, so the latest report of a
                             * peer is the one with the highest version */
    uint16_t node_id;       /* the cluster node that answered the report (its
                             * cluster.node_id); 0: none, or a backend that does
                             * not keep it (sqlite, memory, mysql) */
    bool fresh;             /* the swarm had no such peer before this report, so
                             * the store most likely has no row for it: a hint
                             * to insert first (a backend must still cope with a
                             * row that exists); not stored */
};

/* What one announce changed: the books (raw deltas, snatch) and the peer's
 * new baseline, or its departure. */
struct acct_delta {
    uint32_t user_id;
    uint32_t torrent_id;
    uint64_t uploaded;   /* raw bytes since this peer's previous report */
    uint64_t downloaded;
    uint32_t announces;     /* announces this row stands for; with announces > 0 the row
                             * is also booked on the user's history for the torrent */
    int64_t first_at;       /* earliest announce among them (unix seconds; at is the last) */
    uint32_t seed_seconds;  /* time seeding since the peer's previous announce (capped) */
    uint32_t leech_seconds;
    uint64_t bonus;         /* micro-points earned by that seeding */
    uint8_t suspicious;     /* ACCT_SUSPICIOUS_*: the upload was not credited... */
    uint64_t suspicious_up; /* ...these raw bytes of it; recorded as a suspicious event */
    bool has_credit;        /* false: credited = raw (callers that apply no rules) */
    uint64_t credited_up;   /* after every multiplier (acct/rules.h acct_credit) */
    uint64_t credited_down;
    bool snatch;         /* first completion of this torrent by this user */
    int64_t at;          /* unix seconds */
    bool has_peer;       /* peer below is meaningful (peer.gone: it left) */
    struct peer_row peer;
};

/* Whether d adds anything to a user's totals or history row (a delta of
 * only a snatch, a suspicion or a peer report does not). */
static inline bool acct_delta_has_books(const struct acct_delta *d)
{
    return d->uploaded || d->downloaded || (d->has_credit && (d->credited_up || d->credited_down)) ||
           d->seed_seconds || d->leech_seconds || d->bonus || d->announces;
}

/* The kinds of state; a config names one backend per kind. */
enum store_kind {
    STORE_KIND_USERS = 1,    /* users, classes, settings, whitelist, tokens, and the books:
                              * users' totals, history, snatch rows, suspicious uploads */
    STORE_KIND_TORRENTS = 2, /* torrents, with their snatch counts and transferred bytes */
    STORE_KIND_PEERS = 4,    /* each peer's last report (the baselines a restart needs) */
    STORE_KIND_ALL = 7,
};

/* Names one journal segment (acct/journal.h) for exactly-once application.
 * Exactly-once is per store: each backend records the ids it applied, so a
 * segment whose kinds live in three backends is applied once in each.
 *
 * kinds says which parts of each delta this store applies (0 = all):
 *   USERS     users' raw and credited totals, seed/leech time, bonus and
 *             announces; the user_torrents history row; the snatch row
 *             (ignored when present) and the history's completed_at; the
 *             suspicious row.
 *   TORRENTS  torrents.transferred += downloaded (with announces > 0);
 *             torrents.snatches += 1 for a snatch whose (user, torrent) row
 *             this store had not recorded yet: a backend holding torrents
 *             keeps that row too, even when users live elsewhere.
 *   PEERS     the peer row (newest version wins, gone ones kept as gone). */
struct store_segment_id {
    uint64_t boot;
    uint32_t writer;
    uint64_t seq;
    uint64_t records; /* journal records it held (rows may be fewer, merged); 0: rows */
    uint32_t kinds;   /* STORE_KIND_* parts to apply; 0 = all */
};

/* ---- since MK_STORE_V2: what the admin API reads and writes ------------- */

#define MK_NAME_MAX 64            /* user and class names, bytes of UTF-8 */
#define MK_TORRENT_NAME_MAX 255   /* a torrent's display name, bytes of UTF-8 */
#define MK_MULT_ONE 1000          /* multipliers are thousandths: 1000 = 1.0x */
#define MK_MULT_MAX 100000        /* 100.0x */
#define MK_CLASS_DEFAULT 1        /* the class every user starts in; cannot be deleted */
#define MK_SETTING_KEY_MAX 32
#define MK_SETTING_VALUE_MAX 128

/* A user with everything the API shows. Read: row.can_download is the
 * effective right (the user's own flag AND the class's), ready for
 * users_put; may_download is the user's own flag. Write: may_download is
 * stored, row.can_download is ignored. */
struct user_rec {
    struct user_row row;
    bool may_download;
    char name[MK_NAME_MAX + 1];       /* "" = none; unique when set */
    uint32_t class_id;
    uint32_t up_mult;                 /* personal multipliers, MK_MULT_ONE = 1.0x */
    uint32_t down_mult;
    uint64_t uploaded;                /* books after multipliers, read-only here */
    uint64_t downloaded;
    uint64_t raw_uploaded;            /* as clients reported, read-only here */
    uint64_t raw_downloaded;
    uint64_t seed_time;               /* seconds, read-only here */
    uint64_t leech_time;
    uint64_t bonus;                   /* micro-points, read-only here */
    uint64_t announces;               /* read-only here */
    uint32_t snatches;                /* torrents this user completed; read-only */
    int64_t created_at;               /* unix seconds; read-only */
};

/* A torrent with everything the API shows. row.snatches is read-only here. */
struct torrent_rec {
    struct torrent_row row;
    char name[MK_TORRENT_NAME_MAX + 1]; /* "" = none */
    bool has_size;
    uint64_t size;                    /* total bytes, from the .torrent */
    bool freeleech;
    uint32_t up_mult;                 /* MK_MULT_ONE = 1.0x */
    uint32_t down_mult;
    int64_t created_at;               /* read-only */
    uint64_t transferred;             /* raw bytes downloaded by its peers; read-only */
};

struct class_row {
    uint32_t id;
    char name[MK_NAME_MAX + 1];       /* unique, not empty */
    uint32_t up_mult;
    uint32_t down_mult;
    bool may_download;
    uint32_t users;                   /* how many users belong to it; read-only */
};

/* Live settings the API stores (interval, event, ...), as text. */
struct setting_row {
    char key[MK_SETTING_KEY_MAX + 1];
    char value[MK_SETTING_VALUE_MAX + 1];
};

/* Which users user_list returns, ordered by id. */
struct user_filter {
    uint64_t offset;
    uint32_t limit;
    int enabled;                      /* -1 any, 0, 1 */
    int may_download;                 /* -1 any, 0, 1: the user's own flag */
    bool has_class;
    uint32_t class_id;
    char name_prefix[MK_NAME_MAX + 1]; /* "" = any */
};

typedef int (*store_user_rec_fn)(const struct user_rec *rec, void *arg);
typedef int (*store_class_fn)(const struct class_row *row, void *arg);
typedef int (*store_setting_fn)(const struct setting_row *row, void *arg);

struct store_cfg {
    const char *path; /* sqlite: database file; created with the schema if absent */
    const char *dsn;  /* server backends: postgresql://, mysql://, redis:// (docs/STORES.md) */
    uint32_t kinds;   /* STORE_KIND_* this open will be asked about; 0 = all */
};

/* Row callbacks return 0 to go on or a negative mk_err to stop the load. */
typedef int (*store_user_fn)(const struct user_row *row, void *arg);
typedef int (*store_torrent_fn)(const struct torrent_row *row, void *arg);
typedef int (*store_whitelist_fn)(const struct whitelist_row *row, void *arg);
typedef int (*store_snatch_fn)(const struct snatch_row *row, void *arg);
typedef int (*store_peer_fn)(const struct peer_row *row, void *arg);

/* One user's books on one torrent (the user_torrents table). */
struct history_row {
    uint32_t torrent_id;
    uint8_t info_hash[20];
    uint64_t size;            /* the torrent's, 0 if unknown */
    uint64_t uploaded;        /* credited */
    uint64_t downloaded;
    uint64_t raw_uploaded;
    uint64_t raw_downloaded;
    uint64_t seed_time;       /* seconds */
    uint64_t leech_time;
    uint64_t announces;
    int64_t first_announce;   /* unix seconds */
    int64_t last_announce;
    int64_t completed_at;     /* 0: not completed */
};
typedef int (*store_history_fn)(const struct history_row *row, void *arg);

/* One upload that was not credited (acct/rules.h enum acct_suspicion). */
struct suspicious_row {
    uint8_t info_hash[20];
    int64_t at;               /* unix seconds of the announce */
    uint64_t uploaded;        /* raw bytes not credited */
    char reason[16];          /* "no_leechers" or "too_fast" */
    uint32_t torrent_id;      /* info_hash is all zero when the backend holds no torrents */
};
typedef int (*store_suspicious_fn)(const struct suspicious_row *row, void *arg);

/* A freeleech token: a user's own factors on one torrent, until expires. */
struct token_row {
    uint32_t user_id;
    uint8_t info_hash[20]; /* loads: all zero when the backend holds no torrents */
    uint32_t up_mult;     /* per-mille */
    uint32_t down_mult;
    int64_t expires;      /* unix seconds; 0: never */
    uint32_t torrent_id;  /* writes: the torrent's id when the caller knows it (a split
                           * config); 0: the backend finds it by info_hash */
};
typedef int (*store_token_fn)(const struct token_row *row, void *arg);

#define MK_STORE_V1 1
#define MK_STORE_V2 2 /* adds the admin API's methods (ping ... settings_put) */
#define MK_STORE_V3 3 /* adds peers: load_peers, prune_peers; apply_segment keeps them */
#define MK_STORE_V4 4 /* adds clusters: publish_change, listen_changes, counts_put, counts_load */
#define MK_STORE_V5 5 /* adds apply_segments: several journal segments in one transaction */
#define MK_STORE_V6 6 /* adds prune_applied (forgetting old journal_applied records)
                       * and max_group_records */

/* One swarm's counts on one node of a cluster (cluster/counts.c). A row of
 * 0 seeders and 0 leechers is a removal: snatches and announced_at ride
 * along with a swarm that has peers. */
struct swarm_count_row {
    uint8_t info_hash[20];
    uint32_t seeders;
    uint32_t leechers;
    uint32_t snatches;     /* the torrent's snatches in the node's memory */
    uint32_t announced_at; /* unix seconds of the swarm's last announce on the node */
    uint16_t node_id;      /* loads: the node that published it */
};
typedef int (*store_count_fn)(const struct swarm_count_row *row, void *arg);
/* A change notice's payload (len bytes, not NUL-terminated, outside bytes);
 * NULL: the subscription was (re)made, so notices sent before may be lost. */
typedef void (*store_change_fn)(const char *payload, size_t len, void *arg);

/* The embedded default keeps every kind in one backend; issue 6 splits the
 * table per kind. Each load method streams rows through fn, never building
 * the whole set, and may block. */
struct store_ops {
    int version;      /* MK_STORE_V1; fields are only ever appended */
    const char *name; /* "sqlite", ... */
    /* Opens or creates the store, migrating its schema to the current
     * version. On failure *ctx is untouched and eb says why. */
    int (*open)(void **ctx, const struct store_cfg *cfg, struct mk_errbuf *eb);
    void (*close)(void *ctx);
    int (*load_users)(void *ctx, store_user_fn fn, void *arg, struct mk_errbuf *eb);
    int (*load_torrents)(void *ctx, store_torrent_fn fn, void *arg, struct mk_errbuf *eb);
    int (*load_whitelist)(void *ctx, store_whitelist_fn fn, void *arg, struct mk_errbuf *eb);
    int (*load_snatches)(void *ctx, store_snatch_fn fn, void *arg, struct mk_errbuf *eb);
    /* Applies n deltas in one transaction: adds to users.uploaded/downloaded,
     * inserts snatches (ignoring ones already there) and bumps
     * torrents.snatches for each new one. All or nothing; MK_EUNAVAIL when
     * the database is busy or locked, so the caller keeps the batch and
     * retries. Optional. */
    int (*apply)(void *ctx, const struct acct_delta *rows, size_t n, struct mk_errbuf *eb);
    /* As apply, and records id in the same transaction; if id was recorded
     * before, changes nothing and answers MK_EEXIST. This is what makes a
     * journal replay after a crash add nothing twice. Optional. */
    int (*apply_segment)(void *ctx, const struct store_segment_id *id,
                         const struct acct_delta *rows, size_t n, struct mk_errbuf *eb);

    /* ---- MK_STORE_V2: the admin API's reads and writes. All optional.
     * Each write is one transaction, durable when it returns 0; MK_EUNAVAIL
     * when the database is busy (the API answers 503, the caller retries).
     * MK_ENOTFOUND names the missing row in eb; MK_EEXIST names the
     * duplicate column in eb ("passkey", "name", "id", "info_hash", "prefix"). */

    /* Answers 0 when the store can be read now. */
    int (*ping)(void *ctx, struct mk_errbuf *eb);
    int (*user_get)(void *ctx, uint32_t id, struct user_rec *out, struct mk_errbuf *eb);
    int (*user_get_by_passkey)(void *ctx, const char *passkey, struct user_rec *out,
                               struct mk_errbuf *eb);
    /* Streams the filter's page (ordered by id) through fn; *total gets how
     * many users match the filter, ignoring offset and limit. */
    int (*user_list)(void *ctx, const struct user_filter *f, store_user_rec_fn fn, void *arg,
                     uint64_t *total, struct mk_errbuf *eb);
    /* Inserts rec (with rec->row.id when has_id, else a new id, written
     * back along with created_at). MK_ENOTFOUND if class_id names no class. */
    int (*user_insert)(void *ctx, struct user_rec *rec, bool has_id, struct mk_errbuf *eb);
    /* Rewrites passkey, name, enabled, may_download, class_id and
     * multipliers of user rec->row.id (never the books). */
    int (*user_update)(void *ctx, const struct user_rec *rec, struct mk_errbuf *eb);
    /* Deletes the user and their snatch rows. */
    int (*user_delete)(void *ctx, uint32_t id, struct mk_errbuf *eb);
    int (*torrent_get)(void *ctx, const uint8_t info_hash[20], struct torrent_rec *out,
                       struct mk_errbuf *eb);
    /* Inserts rec (a new id and created_at written back). */
    int (*torrent_insert)(void *ctx, struct torrent_rec *rec, struct mk_errbuf *eb);
    /* Rewrites enabled, deleted, reason, name, size, freeleech and
     * multipliers of the torrent with rec->row.info_hash. */
    int (*torrent_update)(void *ctx, const struct torrent_rec *rec, struct mk_errbuf *eb);
    int (*whitelist_insert)(void *ctx, const struct whitelist_row *row, struct mk_errbuf *eb);
    /* Deletes the prefix (exact bytes); *out gets the removed row. */
    int (*whitelist_delete)(void *ctx, const uint8_t *prefix, size_t len,
                            struct whitelist_row *out, struct mk_errbuf *eb);
    int (*class_list)(void *ctx, store_class_fn fn, void *arg, struct mk_errbuf *eb);
    int (*class_get)(void *ctx, uint32_t id, struct class_row *out, struct mk_errbuf *eb);
    /* As user_insert. */
    int (*class_insert)(void *ctx, struct class_row *row, bool has_id, struct mk_errbuf *eb);
    int (*class_update)(void *ctx, const struct class_row *row, struct mk_errbuf *eb);
    /* MK_EEXIST ("users") while users belong to it, MK_EINVAL for the default class. */
    int (*class_delete)(void *ctx, uint32_t id, struct mk_errbuf *eb);
    int (*settings_load)(void *ctx, store_setting_fn fn, void *arg, struct mk_errbuf *eb);
    /* Inserts or replaces n settings in one transaction. */
    int (*settings_put)(void *ctx, const struct setting_row *rows, size_t n,
                        struct mk_errbuf *eb);

    /* ---- MK_STORE_V3: peers' baselines across restarts. Optional.
     * apply_segment of a V3 backend also records each delta's peer, in the
     * same transaction as the books, unless the store already holds a
     * report of that peer with a higher version (segments of different
     * workers arrive in any order). A peer that left is kept as gone. */

    /* Streams peers last seen at or after seen_since (unix seconds) and not
     * gone, with their torrent's info_hash. */
    int (*load_peers)(void *ctx, int64_t seen_since, store_peer_fn fn, void *arg,
                      struct mk_errbuf *eb);
    /* Deletes peers last seen before seen_before (the tracker expired them)
     * and gone ones no newer than that. */
    int (*prune_peers)(void *ctx, int64_t seen_before, struct mk_errbuf *eb);
    /* Streams one user's history rows, most recent announce first, offset
     * and limit applied; *total gets how many the user has. */
    int (*user_history)(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
                        store_history_fn fn, void *arg, uint64_t *total, struct mk_errbuf *eb);
    /* Streams one user's suspicious uploads, newest first, as user_history. */
    int (*user_suspicious)(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
                           store_suspicious_fn fn, void *arg, uint64_t *total,
                           struct mk_errbuf *eb);
    /* Streams tokens not expired at now (all users, or user_id if nonzero). */
    int (*load_tokens)(void *ctx, uint32_t user_id, int64_t now, store_token_fn fn, void *arg,
                       struct mk_errbuf *eb);
    /* Inserts or replaces a token (MK_ENOTFOUND: no such user or torrent). */
    int (*token_put)(void *ctx, const struct token_row *row, struct mk_errbuf *eb);
    /* Deletes key's user's token on key's torrent (key->torrent_id, or by
     * key->info_hash when 0). MK_ENOTFOUND if the user had none there. */
    int (*token_delete)(void *ctx, const struct token_row *key, struct mk_errbuf *eb);
    /* As torrent_get, by id: what a split config needs to name the torrents
     * of rows kept in the users' backend. */
    int (*torrent_get_by_id)(void *ctx, uint32_t id, struct torrent_rec *out,
                             struct mk_errbuf *eb);

    /* ---- MK_STORE_V4: nodes of a cluster sharing this (the users') store.
     * Optional: NULL in backends that are not shared (sqlite, memory), not
     * yet (mysql), and in store/split.c (cluster/ opens the users' place
     * itself). */

    /* Sends payload (NUL-terminated text, at most 96 bytes: cluster/change.h)
     * to every node listening now; a node that is not listening never sees
     * it (listen_changes says when that may have happened). */
    int (*publish_change)(void *ctx, const char *payload, struct mk_errbuf *eb);
    /* Waits up to timeout_ms for notices and calls fn once for each. A
     * context that listens is used for nothing else. The first call, and
     * the first after one that answered MK_EUNAVAIL (the connection was
     * lost), subscribes anew and then calls fn(NULL, 0, arg) before any
     * notice: what was sent while not subscribed is gone. 0 on timeout. */
    int (*listen_changes)(void *ctx, int timeout_ms, store_change_fn fn, void *arg,
                          struct mk_errbuf *eb);
    /* Publishes node's counts of rows[0..n) (seeders, leechers, snatches,
     * announced_at; a row of 0 and 0 is removed)
     * and marks node alive for ttl_s seconds; with reset, every row node
     * published before is removed first (a node that restarts). */
    int (*counts_put)(void *ctx, uint16_t node, bool reset, const struct swarm_count_row *rows,
                      size_t n, uint32_t ttl_s, struct mk_errbuf *eb);
    /* Streams the rows of every node but self that was marked alive within
     * the last ttl_s seconds (the store's clock, not the nodes'). */
    int (*counts_load)(void *ctx, uint16_t self, uint32_t ttl_s, store_count_fn fn, void *arg,
                       struct mk_errbuf *eb);

    /* ---- MK_STORE_V5. Optional.
     * As apply_segment for the nids segments ids[0..nids) at once: rows
     * hold their records merged, and every id is recorded in the one
     * transaction that applies them (kinds: ids[0]'s). If any of the ids was
     * recorded before, changes nothing and answers MK_EEXIST: the caller
     * then applies them one by one with apply_segment. Fewer, bigger
     * transactions are what it is for: a page touched by many segments is
     * written once. */
    int (*apply_segments)(void *ctx, const struct store_segment_id *ids, size_t nids,
                          const struct acct_delta *rows, size_t n, struct mk_errbuf *eb);

    /* ---- MK_STORE_V6. Optional.
     * Forgets the segment ids recorded (apply_segment, apply_segments)
     * before applied_before (unix seconds, as the store recorded them): of
     * cluster node `node` only (the top 16 bits of the boot id), or with
     * node 0 every id. An id only guards a segment whose file is still on
     * disk (a crash between the commit and the delete): without this the
     * record grew by one row per segment, five a second per busy worker. */
    int (*prune_applied)(void *ctx, int64_t applied_before, uint16_t node, struct mk_errbuf *eb);
    /* The most records apply_segments should be given at once (0: no
     * bound): a store that serves no one else while it applies (Redis runs
     * a script alone) keeps its groups short. The flusher never makes a
     * group smaller than one segment. */
    uint32_t max_group_records;
};

/* The registry: NULL when no backend has that name. */
const struct store_ops *store_find(const char *name);

/* Backends known to the registry (one file each). */
extern const struct store_ops store_sqlite_ops; /* store/sqlite.c */
extern const struct store_ops store_memory_ops; /* store/sqlite.c: an in-memory database */
extern const struct store_ops store_pg_ops;     /* store/pg.c */
extern const struct store_ops store_mysql_ops;  /* store/mysql.c */
extern const struct store_ops store_redis_ops;  /* store/redis.c */

/* An open store: the backend and its context. */
struct store {
    const struct store_ops *ops;
    void *ctx;
};

int store_open(struct store *st, const char *backend, const struct store_cfg *cfg,
               struct mk_errbuf *eb);

/* Where one kind lives: a backend name and how to reach it. */
struct store_place {
    const char *backend;
    const char *path;
    const char *dsn;
};

/* Opens the store of users, torrents and peers (places[0..2], enum
 * store_kind's bit order). Kinds placed alike share one open backend; when
 * all three do, st is that backend itself. Otherwise st routes each method
 * to its kind's backend (store/split.c) and applies each journal segment
 * once in each. */
int store_open_kinds(struct store *st, const struct store_place places[3], struct mk_errbuf *eb);
void store_close(struct store *st);
int store_load_users(struct store *st, store_user_fn fn, void *arg, struct mk_errbuf *eb);
int store_load_torrents(struct store *st, store_torrent_fn fn, void *arg, struct mk_errbuf *eb);
int store_load_whitelist(struct store *st, store_whitelist_fn fn, void *arg, struct mk_errbuf *eb);
int store_load_snatches(struct store *st, store_snatch_fn fn, void *arg, struct mk_errbuf *eb);
int store_apply(struct store *st, const struct acct_delta *rows, size_t n, struct mk_errbuf *eb);
int store_apply_segment(struct store *st, const struct store_segment_id *id,
                        const struct acct_delta *rows, size_t n, struct mk_errbuf *eb);
/* MK_ENOTSUP (not logged) for a backend without apply_segments. */
int store_apply_segments(struct store *st, const struct store_segment_id *ids, size_t nids,
                         const struct acct_delta *rows, size_t n, struct mk_errbuf *eb);
int store_load_peers(struct store *st, int64_t seen_since, store_peer_fn fn, void *arg,
                     struct mk_errbuf *eb);
int store_prune_peers(struct store *st, int64_t seen_before, struct mk_errbuf *eb);
/* The backend's max_group_records (0: no bound, or a backend before V6). */
uint32_t store_max_group_records(const struct store *st);

/* MK_ENOTSUP (not logged) for a backend without prune_applied. */
int store_prune_applied(struct store *st, int64_t applied_before, uint16_t node,
                        struct mk_errbuf *eb);
int store_user_history(struct store *st, uint32_t user_id, uint64_t offset, uint32_t limit,
                       store_history_fn fn, void *arg, uint64_t *total, struct mk_errbuf *eb);
int store_load_tokens(struct store *st, uint32_t user_id, int64_t now, store_token_fn fn,
                      void *arg, struct mk_errbuf *eb);
int store_token_put(struct store *st, const struct token_row *row, struct mk_errbuf *eb);
int store_token_delete(struct store *st, const struct token_row *key, struct mk_errbuf *eb);
int store_torrent_get_by_id(struct store *st, uint32_t id, struct torrent_rec *out,
                            struct mk_errbuf *eb);
int store_user_suspicious(struct store *st, uint32_t user_id, uint64_t offset, uint32_t limit,
                          store_suspicious_fn fn, void *arg, uint64_t *total,
                          struct mk_errbuf *eb);

/* MK_STORE_V2 wrappers: MK_ENOTSUP for a backend older than V2 or without
 * the method; MK_ENOTFOUND and MK_EEXIST are answers, not logged failures. */
int store_ping(struct store *st, struct mk_errbuf *eb);
int store_user_get(struct store *st, uint32_t id, struct user_rec *out, struct mk_errbuf *eb);
int store_user_get_by_passkey(struct store *st, const char *passkey, struct user_rec *out,
                              struct mk_errbuf *eb);
int store_user_list(struct store *st, const struct user_filter *f, store_user_rec_fn fn,
                    void *arg, uint64_t *total, struct mk_errbuf *eb);
int store_user_insert(struct store *st, struct user_rec *rec, bool has_id, struct mk_errbuf *eb);
int store_user_update(struct store *st, const struct user_rec *rec, struct mk_errbuf *eb);
int store_user_delete(struct store *st, uint32_t id, struct mk_errbuf *eb);
int store_torrent_get(struct store *st, const uint8_t info_hash[20], struct torrent_rec *out,
                      struct mk_errbuf *eb);
int store_torrent_insert(struct store *st, struct torrent_rec *rec, struct mk_errbuf *eb);
int store_torrent_update(struct store *st, const struct torrent_rec *rec, struct mk_errbuf *eb);
int store_whitelist_insert(struct store *st, const struct whitelist_row *row,
                           struct mk_errbuf *eb);
int store_whitelist_delete(struct store *st, const uint8_t *prefix, size_t len,
                           struct whitelist_row *out, struct mk_errbuf *eb);
int store_class_list(struct store *st, store_class_fn fn, void *arg, struct mk_errbuf *eb);
int store_class_get(struct store *st, uint32_t id, struct class_row *out, struct mk_errbuf *eb);
int store_class_insert(struct store *st, struct class_row *row, bool has_id,
                       struct mk_errbuf *eb);
int store_class_update(struct store *st, const struct class_row *row, struct mk_errbuf *eb);
int store_class_delete(struct store *st, uint32_t id, struct mk_errbuf *eb);
int store_settings_load(struct store *st, store_setting_fn fn, void *arg, struct mk_errbuf *eb);
int store_settings_put(struct store *st, const struct setting_row *rows, size_t n,
                       struct mk_errbuf *eb);

/* MK_STORE_V4 wrappers: MK_ENOTSUP for a backend older than V4 or without
 * the method. */
/* True when st's backend can publish and hear change notices. */
bool store_can_notify(const struct store *st);
int store_publish_change(struct store *st, const char *payload, struct mk_errbuf *eb);
int store_listen_changes(struct store *st, int timeout_ms, store_change_fn fn, void *arg,
                         struct mk_errbuf *eb);
int store_counts_put(struct store *st, uint16_t node, bool reset,
                     const struct swarm_count_row *rows, size_t n, uint32_t ttl_s,
                     struct mk_errbuf *eb);
int store_counts_load(struct store *st, uint16_t self, uint32_t ttl_s, store_count_fn fn,
                      void *arg, struct mk_errbuf *eb);

#endif /* MIKA_STORE_STORE_H */
