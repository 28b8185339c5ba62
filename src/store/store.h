/* store/store.h: the store interfaces, one per kind of state.
 *
 * Owns: the row structs that cross the store boundary and the ops tables a
 * backend fills (shaped like SQLite's sqlite3_vfs: a versioned table of
 * function pointers plus an opaque context). Callers never touch ops->
 * directly: they use the store_* wrappers below, which check the version,
 * answer MK_ENOTSUP for a missing optional method, and log failures.
 *
 * Threads: a store context is used by one thread at a time (the loader at
 * start-up and on SIGHUP, then the flusher). Every method may block; none is
 * ever called from an event-loop worker.
 *
 * Backends: "sqlite" (store/sqlite.c). Issue 6 adds postgres, mysql, redis.
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

struct user_row {
    uint32_t id;
    char passkey[MK_PASSKEY_MAX + 1]; /* NUL-terminated */
    bool enabled;                     /* false: every announce refused */
    bool can_download;                /* false: may seed, may not leech */
};

struct torrent_row {
    uint32_t id;
    uint8_t info_hash[20];
    bool enabled;                     /* false: refused, "torrent disabled" */
    bool deleted;                     /* true: "unregistered torrent: <reason>" */
    char reason[MK_REASON_MAX + 1];   /* why it was deleted; may be empty */
    uint32_t snatches;                /* completed downloads, once per user */
};

struct whitelist_row {
    uint8_t prefix[MK_PREFIX_MAX];    /* raw bytes, compared with the peer_id start */
    uint8_t prefix_len;               /* 1..MK_PREFIX_MAX */
    char name[MK_CLIENT_NAME_MAX + 1];
};

/* One user's snatch of one torrent: recorded once, whatever the client sends.
 * Loaders fill info_hash from the torrent (a join), so the caller can find the
 * torrent without a lookup by id; snatches of torrents that no longer exist
 * are not returned. */
struct snatch_row {
    uint32_t user_id;
    uint32_t torrent_id;
    int64_t at; /* unix seconds */
    uint8_t info_hash[20];
};

/* What one announce changed in the books, before issue 5's multipliers. */
struct acct_delta {
    uint32_t user_id;
    uint32_t torrent_id;
    uint64_t uploaded;   /* raw bytes since this peer's previous report */
    uint64_t downloaded;
    bool snatch;         /* first completion of this torrent by this user */
    int64_t at;          /* unix seconds */
};

/* Names one journal segment (acct/journal.h) for exactly-once application. */
struct store_segment_id {
    uint64_t boot;
    uint32_t writer;
    uint64_t seq;
};

struct store_cfg {
    const char *path; /* sqlite: database file; created with the schema if absent */
};

/* Row callbacks return 0 to go on or a negative mk_err to stop the load. */
typedef int (*store_user_fn)(const struct user_row *row, void *arg);
typedef int (*store_torrent_fn)(const struct torrent_row *row, void *arg);
typedef int (*store_whitelist_fn)(const struct whitelist_row *row, void *arg);
typedef int (*store_snatch_fn)(const struct snatch_row *row, void *arg);

#define MK_STORE_V1 1

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
};

/* The registry: NULL when no backend has that name. */
const struct store_ops *store_find(const char *name);

/* Backends known to the registry (one file each). */
extern const struct store_ops store_sqlite_ops; /* store/sqlite.c */

/* An open store: the backend and its context. */
struct store {
    const struct store_ops *ops;
    void *ctx;
};

int store_open(struct store *st, const char *backend, const struct store_cfg *cfg,
               struct mk_errbuf *eb);
void store_close(struct store *st);
int store_load_users(struct store *st, store_user_fn fn, void *arg, struct mk_errbuf *eb);
int store_load_torrents(struct store *st, store_torrent_fn fn, void *arg, struct mk_errbuf *eb);
int store_load_whitelist(struct store *st, store_whitelist_fn fn, void *arg, struct mk_errbuf *eb);
int store_load_snatches(struct store *st, store_snatch_fn fn, void *arg, struct mk_errbuf *eb);
int store_apply(struct store *st, const struct acct_delta *rows, size_t n, struct mk_errbuf *eb);
int store_apply_segment(struct store *st, const struct store_segment_id *id,
                        const struct acct_delta *rows, size_t n, struct mk_errbuf *eb);

#endif /* MIKA_STORE_STORE_H */
