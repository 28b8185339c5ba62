/* store/sqlite_apply.h: the sqlite backend's books (apply, apply_segment,
 * apply_segments), for store/sqlite.c only. See sqlite_apply.c.
 */
#ifndef MIKA_STORE_SQLITE_APPLY_H
#define MIKA_STORE_SQLITE_APPLY_H

#include <sqlite3.h>
#include <stdbool.h>

#include "store/store.h"

/* user_torrents' columns of the peer kept in the row (schema v5), in
 * binding order: the books' statements and the v6 migration name them. */
#define SQLITE_SLOT_COLUMNS                                                                    \
    "peer_id, peer_family, peer_ip, peer_port, peer_uploaded, peer_downloaded, peer_seeder,"  \
    " peer_partial, peer_last_seen, peer_version, peer_gone"

/* A history row's key in user_torrents (schema v6) as an SQL expression of
 * its user and torrent: the rowid the migration writes and the CHECK keeps.
 * SQLITE_HISTORY_KEY is the same of the books' ?1 (user) and ?2 (torrent). */
#define SQLITE_HISTORY_ID(user, torrent) "((" user " << 32) | " torrent ")"
#define SQLITE_HISTORY_KEY SQLITE_HISTORY_ID("?1", "?2")

/* One connection's prepared statements for the books. */
struct sqlite_apply {
    sqlite3_stmt *add_traffic;   /* users.uploaded/downloaded += */
    sqlite3_stmt *add_snatch;    /* INSERT OR IGNORE INTO snatches */
    sqlite3_stmt *add_history;   /* user_torrents insert, or nothing when the row is there */
    sqlite3_stmt *add_transferred; /* torrents.transferred += */
    sqlite3_stmt *mark_completed; /* user_torrents.completed_at, first time */
    sqlite3_stmt *add_suspicious; /* suspicious insert */
    sqlite3_stmt *bump_snatches; /* torrents.snatches += 1 */
    sqlite3_stmt *mark_segment;  /* journal_applied insert */
    sqlite3_stmt *put_peer;      /* peers upsert: a peer's newer baseline, or its leaving */
    /* The same changes as UPDATEs only: most rows exist already, and an
     * UPDATE finds its row in one seek where an upsert's conflict costs two.
     * When it changes nothing, the insert or upsert above runs. */
    sqlite3_stmt *upd_history;
    sqlite3_stmt *upd_peer;
    /* upd_history that also writes the user's peer into the row. */
    sqlite3_stmt *upd_history_peer;
    bool applies;                /* a batch ran: the cache is SQLITE_APPLY_CACHE_KIB */
};

/* Prepares ap's statements on db (its schema migrated). On failure the
 * ones prepared stay in ap for sqlite_apply_fini. */
int sqlite_apply_init(sqlite3 *db, struct sqlite_apply *ap, struct mk_errbuf *eb);
/* Finalizes them; a zeroed ap is fine. */
void sqlite_apply_fini(struct sqlite_apply *ap);

/* The n rows in one transaction; with ids, the nids segments are recorded
 * in it, and if any was there already nothing changes (MK_EEXIST). kinds:
 * ids[0]'s (0 or no ids: all). */
int sqlite_apply_run(sqlite3 *db, struct sqlite_apply *ap, const struct store_segment_id *ids,
                     size_t nids, const struct acct_delta *rows, size_t n, struct mk_errbuf *eb);

#endif /* MIKA_STORE_SQLITE_APPLY_H */
