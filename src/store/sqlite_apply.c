/* store/sqlite_apply.c: the sqlite backend's books: apply(), apply_segment()
 * and apply_segments() for store/sqlite.c's ops table.
 *
 * Owns: the prepared statements that add a batch of merged deltas to users,
 * user_torrents, torrents, snatches, suspicious and peers, the
 * journal_applied rows that make a segment count once, and the page cache of
 * a connection that applies.
 * Not here: the connection, the schema and its migrations, the loaders
 * (sqlite.c); merging a segment's records (acct/flusher.c); summing a batch
 * per user, history row and torrent (store/sums.c).
 * Invariants: a batch is one transaction, all or nothing; segment ids are
 * recorded in it; a batch holding an id recorded before changes nothing.
 */
#include "store/sqlite_apply.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sums.h"
#include "util/log.h"

/* The page cache of a connection that applies the books (the flusher's;
 * others keep the 16 MiB set at open). A group of journal segments dirties
 * pages all over users, user_torrents and peers; with 16 MiB SQLite spilled
 * dirty pages to the WAL in mid-transaction and wrote them again later, and
 * re-read clean ones. Replaying a fixed 105k-record journal (100k users, 400k
 * peers: 47 MiB of those tables), CPU ticks, two runs each: groups of 15k
 * records 315, 337 -> 274, 296; of 65k, 184, 190 -> 158, 154. Pages are
 * allocated as they are used, so a smaller database costs no more. */
#define SQLITE_APPLY_CACHE_KIB 65536

/* What a history sum (?3..?11) adds to its user_torrents row. */
#define APPLY_HISTORY_ADDS                                                                     \
    " uploaded = uploaded + ?3, downloaded = downloaded + ?4,"                                 \
    " raw_uploaded = raw_uploaded + ?5, raw_downloaded = raw_downloaded + ?6,"                 \
    " seed_time = seed_time + ?7, leech_time = leech_time + ?8, announces = announces + ?9,"   \
    " first_announce = min(first_announce, ?10), last_announce = max(last_announce, ?11)"

static int apply_fail(sqlite3 *db, int rc, struct mk_errbuf *eb, const char *what)
{
    int err = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED ? MK_EUNAVAIL
              : (rc & 0xff) == SQLITE_NOMEM                              ? MK_ENOMEM
                                                                         : MK_EIO;
    return mk_fail(eb, err, "sqlite: %s: %s", what, sqlite3_errmsg(db));
}

static int apply_exec(sqlite3 *db, const char *sql, struct mk_errbuf *eb)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : apply_fail(db, rc, eb, "exec");
}

static void apply_rollback(sqlite3 *db)
{
    /* Fails harmlessly when SQLite already rolled back on its own. */
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

static int apply_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out, struct mk_errbuf *eb)
{
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
    return rc == SQLITE_OK ? 0 : apply_fail(db, rc, eb, "prepare");
}

int sqlite_apply_init(sqlite3 *db, struct sqlite_apply *ap, struct mk_errbuf *eb)
{
    int err = 0;
    if (err == 0) {
        err = apply_prepare(db,
                             "UPDATE users SET uploaded = uploaded + ?1,"
                             " downloaded = downloaded + ?2, raw_uploaded = raw_uploaded + ?4,"
                             " raw_downloaded = raw_downloaded + ?5, seed_time = seed_time + ?6,"
                             " leech_time = leech_time + ?7, bonus = bonus + ?8,"
                             " announces = announces + ?9 WHERE id = ?3",
                             &ap->add_traffic, eb);
    }
    if (err == 0) {
        err = apply_prepare(db,
                             /* Only after an UPDATE found no row, or one
                              * keeping another peer: that one is left. */
                             "INSERT OR IGNORE INTO user_torrents (id, user_id, torrent_id,"
                             " uploaded, downloaded, raw_uploaded, raw_downloaded, seed_time,"
                             " leech_time, announces, first_announce, last_announce, "
                             SQLITE_SLOT_COLUMNS ")"
                             " VALUES (" SQLITE_HISTORY_KEY ", ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
                             " ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
                             &ap->add_history, eb);
    }
    if (err == 0) {
        err = apply_prepare(db,
                             "UPDATE torrents SET transferred = transferred + ?2 WHERE id = ?1",
                             &ap->add_transferred, eb);
    }
    if (err == 0) {
        err = apply_prepare(db,
                             "INSERT INTO user_torrents (id, user_id, torrent_id, first_announce,"
                             " last_announce, completed_at)"
                             " VALUES (" SQLITE_HISTORY_KEY ", ?1, ?2, ?3, ?3, ?3)"
                             " ON CONFLICT (id) DO UPDATE SET"
                             " completed_at = coalesce(completed_at, ?3)",
                             &ap->mark_completed, eb);
    }
    if (err == 0) {
        err = apply_prepare(db,
                             "INSERT INTO suspicious (user_id, torrent_id, at, uploaded, reason)"
                             " VALUES (?1, ?2, ?3, ?4, ?5)",
                             &ap->add_suspicious, eb);
    }
    if (err == 0) {
        err = apply_prepare(db,
                             "INSERT OR IGNORE INTO snatches (user_id, torrent_id, at)"
                             " VALUES (?1, ?2, ?3)",
                             &ap->add_snatch, eb);
    }
    if (err == 0) {
        err = apply_prepare(db, "UPDATE torrents SET snatches = snatches + 1 WHERE id = ?1",
                             &ap->bump_snatches, eb);
    }
    if (err == 0) {
        err = apply_prepare(db,
                             "INSERT OR IGNORE INTO journal_applied (boot, writer, seq, records)"
                             " VALUES (?1, ?2, ?3, ?4)",
                             &ap->mark_segment, eb);
    }
    if (err == 0) {
        err = apply_prepare(db,
                             "INSERT INTO peers (torrent_id, user_id, peer_id, family, ip, port,"
                             " uploaded, downloaded, seeder, partial, last_seen, version, gone)"
                             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                             " ON CONFLICT (torrent_id, user_id, peer_id) DO UPDATE SET"
                             " family = ?4, ip = ?5, port = ?6, uploaded = ?7, downloaded = ?8,"
                             " seeder = ?9, partial = ?10, last_seen = ?11, version = ?12,"
                             " gone = ?13 WHERE ?12 > peers.version",
                             &ap->put_peer, eb);
    }
    if (err == 0) {
        err = apply_prepare(db,
                             "UPDATE user_torrents SET"
                             APPLY_HISTORY_ADDS
                             " WHERE id = " SQLITE_HISTORY_KEY,
                             &ap->upd_history, eb);
    }
    if (err == 0) {
        /* The user's peer on the torrent goes into the history row when
         * the row keeps no peer or an older report of this one; else this
         * changes nothing, and add_history (then upd_history) runs. A
         * peer that left stays in the row until prune_peers clears it, as
         * a row of peers stays: an older report must not bring it back. */
        err = apply_prepare(db,
                             "UPDATE user_torrents SET"
                             APPLY_HISTORY_ADDS ","
                             " peer_id = ?12, peer_family = ?13, peer_ip = ?14, peer_port = ?15,"
                             " peer_uploaded = ?16, peer_downloaded = ?17, peer_seeder = ?18,"
                             " peer_partial = ?19, peer_last_seen = ?20, peer_version = ?21,"
                             " peer_gone = ?22"
                             " WHERE id = " SQLITE_HISTORY_KEY
                             " AND (peer_id IS NULL OR peer_id = ?12)"
                             " AND (peer_id IS NOT ?12 OR peer_version < ?21)",
                             &ap->upd_history_peer, eb);
    }
    if (err == 0) {
        err = apply_prepare(db,
                             "UPDATE peers SET"
                             " family = ?4, ip = ?5, port = ?6, uploaded = ?7, downloaded = ?8,"
                             " seeder = ?9, partial = ?10, last_seen = ?11, version = ?12,"
                             " gone = ?13"
                             " WHERE torrent_id = ?1 AND user_id = ?2 AND peer_id = ?3"
                             " AND version < ?12",
                             &ap->upd_peer, eb);
    }
    return err;
}

void sqlite_apply_fini(struct sqlite_apply *ap)
{
    sqlite3_finalize(ap->add_traffic);
    sqlite3_finalize(ap->add_snatch);
    sqlite3_finalize(ap->add_history);
    sqlite3_finalize(ap->add_transferred);
    sqlite3_finalize(ap->mark_completed);
    sqlite3_finalize(ap->add_suspicious);
    sqlite3_finalize(ap->bump_snatches);
    sqlite3_finalize(ap->mark_segment);
    sqlite3_finalize(ap->put_peer);
    sqlite3_finalize(ap->upd_history);
    sqlite3_finalize(ap->upd_history_peer);
    sqlite3_finalize(ap->upd_peer);
    memset(ap, 0, sizeof(*ap));
}

/* SQLite integers are signed; a delta past INT64_MAX is a bug upstream, but
 * refusing it would wedge the batch forever, so it is clamped and said. */
static sqlite3_int64 apply_clamp(uint64_t v, uint32_t user_id)
{
    if (v > (uint64_t)INT64_MAX) {
        mk_log(MK_LOG_WARN, "store.sqlite", "user %" PRIu32 ": delta %" PRIu64 " clamped", user_id,
               v);
        return INT64_MAX;
    }
    return (sqlite3_int64)v;
}

static int apply_step(sqlite3 *db, sqlite3_stmt *st, struct mk_errbuf *eb, const char *what)
{
    /* Every parameter is bound again before the next step: no need to
     * clear them. */
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        return apply_fail(db, rc, eb, what);
    }
    return 0;
}

/* A peer's report into st's parameters first..first+10, in the order of
 * SQLITE_SLOT_COLUMNS (peers' own columns from peer_id on are the same). */
static void apply_bind_peer_fields(sqlite3_stmt *st, int first, const struct acct_delta *d)
{
    const struct peer_row *p = &d->peer;
    sqlite3_bind_blob(st, first, p->peer_id, 20, SQLITE_STATIC);
    sqlite3_bind_int(st, first + 1, p->family == 6 ? 6 : 4);
    sqlite3_bind_blob(st, first + 2, p->ip, p->family == 6 ? 16 : 4, SQLITE_STATIC);
    sqlite3_bind_int(st, first + 3, p->port);
    sqlite3_bind_int64(st, first + 4, apply_clamp(p->uploaded, d->user_id));
    sqlite3_bind_int64(st, first + 5, apply_clamp(p->downloaded, d->user_id));
    sqlite3_bind_int(st, first + 6, p->seeder);
    sqlite3_bind_int(st, first + 7, p->partial);
    sqlite3_bind_int64(st, first + 8, p->last_seen);
    sqlite3_bind_int64(st, first + 9, p->version);
    sqlite3_bind_int(st, first + 10, p->gone);
}

/* ?1..?13 of put_peer and upd_peer. */
static void apply_bind_peer(sqlite3_stmt *st, const struct acct_delta *d)
{
    sqlite3_bind_int64(st, 1, d->torrent_id);
    sqlite3_bind_int64(st, 2, d->user_id);
    apply_bind_peer_fields(st, 3, d);
}

/* ?1..?11 of add_history and upd_history. */
static void apply_bind_history(sqlite3_stmt *st, const struct sum_history *h)
{
    sqlite3_bind_int64(st, 1, h->user_id);
    sqlite3_bind_int64(st, 2, h->torrent_id);
    for (int j = 0; j < SUM_HISTORY_FIELDS; j++) {
        sqlite3_bind_int64(st, 3 + j, apply_clamp(h->v[j], h->user_id));
    }
    sqlite3_bind_int64(st, 10, h->first);
    sqlite3_bind_int64(st, 11, h->last);
}

/* Which peer report of a batch goes into which history row. A user's only
 * report on a torrent in the batch is written with the user's history
 * there (one row where there were two: the history row and the peers row);
 * a second peer of the same user and torrent goes to peers. */
struct apply_pairs {
    const struct acct_delta *rows;     /* the batch */
    const struct acct_delta **peer_of; /* by history sum: its one peer report, or NULL */
    unsigned char *kept;               /* by row, a bit: its peer went with the history */
};

/* The index of (user_id, torrent_id)'s sum in m->history (sorted by both). */
static bool apply_history_find(const struct store_sums *m, uint32_t user_id, uint32_t torrent_id,
                               size_t *out)
{
    size_t lo = 0, hi = m->nhistory;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct sum_history *h = &m->history[mid];
        if (h->user_id < user_id || (h->user_id == user_id && h->torrent_id < torrent_id)) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo < m->nhistory && m->history[lo].user_id == user_id &&
        m->history[lo].torrent_id == torrent_id) {
        *out = lo;
        return true;
    }
    return false;
}

static int apply_pairs_build(struct apply_pairs *pairs, const struct store_sums *m,
                             const struct acct_delta *rows, size_t n)
{
    /* Several reports on one history row: none goes with it. */
    static const struct acct_delta several;
    pairs->peer_of = calloc(m->nhistory ? m->nhistory : 1, sizeof(*pairs->peer_of));
    pairs->kept = calloc(n / 8 + 1, 1);
    if (!pairs->peer_of || !pairs->kept) {
        return MK_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        size_t h;
        if (rows[i].has_peer && apply_history_find(m, rows[i].user_id, rows[i].torrent_id, &h)) {
            pairs->peer_of[h] = pairs->peer_of[h] ? &several : &rows[i];
        }
    }
    for (size_t h = 0; h < m->nhistory; h++) {
        if (pairs->peer_of[h] == &several) {
            pairs->peer_of[h] = NULL;
        }
    }
    return 0;
}

static void apply_pairs_mark(struct apply_pairs *pairs, const struct acct_delta *d)
{
    size_t i = (size_t)(d - pairs->rows);
    pairs->kept[i / 8] |= (unsigned char)(1u << (i % 8));
}

static bool apply_pairs_kept(const struct apply_pairs *pairs, const struct acct_delta *d)
{
    size_t i = (size_t)(d - pairs->rows);
    return pairs->kept && (pairs->kept[i / 8] >> (i % 8)) & 1u;
}

static void apply_pairs_free(struct apply_pairs *pairs)
{
    free(pairs->peer_of);
    free(pairs->kept);
}

/* Each sum once per batch: a user with many torrents in one group of
 * segments is one users UPDATE, a popular torrent one torrents UPDATE
 * (store/sums.c). */
static int apply_sums(sqlite3 *db, struct sqlite_apply *ap, uint32_t kinds,
                      const struct store_sums *m, struct apply_pairs *pairs,
                      struct mk_errbuf *eb)
{
    int err = 0;
    bool users = kinds & STORE_KIND_USERS, torrents = kinds & STORE_KIND_TORRENTS;
    for (size_t i = 0; users && i < m->nusers && err == 0; i++) {
        const struct sum_user *u = &m->users[i];
        sqlite3_stmt *st = ap->add_traffic;
        sqlite3_bind_int64(st, 1, apply_clamp(u->v[SUM_CREDITED_UP], u->id));
        sqlite3_bind_int64(st, 2, apply_clamp(u->v[SUM_CREDITED_DOWN], u->id));
        sqlite3_bind_int64(st, 3, u->id);
        sqlite3_bind_int64(st, 4, apply_clamp(u->v[SUM_RAW_UP], u->id));
        sqlite3_bind_int64(st, 5, apply_clamp(u->v[SUM_RAW_DOWN], u->id));
        sqlite3_bind_int64(st, 6, apply_clamp(u->v[SUM_SEED_TIME], u->id));
        sqlite3_bind_int64(st, 7, apply_clamp(u->v[SUM_LEECH_TIME], u->id));
        sqlite3_bind_int64(st, 8, apply_clamp(u->v[SUM_BONUS], u->id));
        sqlite3_bind_int64(st, 9, apply_clamp(u->v[SUM_ANNOUNCES], u->id));
        err = apply_step(db, st, eb, "apply traffic");
    }
    for (size_t i = 0; users && i < m->nhistory && err == 0; i++) {
        const struct sum_history *h = &m->history[i];
        const struct acct_delta *peer = pairs->peer_of ? pairs->peer_of[i] : NULL;
        sqlite3_stmt *upd = peer ? ap->upd_history_peer : ap->upd_history;
        apply_bind_history(upd, h);
        if (peer) {
            apply_bind_peer_fields(upd, 12, peer);
        }
        err = apply_step(db, upd, eb, "apply history");
        bool done = err == 0 && sqlite3_changes(db) > 0;
        bool kept = peer && done;
        if (err == 0 && !done) {
            /* A new row, which keeps the peer. */
            apply_bind_history(ap->add_history, h);
            for (int k = 12; k <= 22; k++) {
                sqlite3_bind_null(ap->add_history, k);
            }
            if (peer) {
                apply_bind_peer_fields(ap->add_history, 12, peer);
            }
            err = apply_step(db, ap->add_history, eb, "apply history");
            done = err == 0 && sqlite3_changes(db) > 0;
            kept = done && peer != NULL;
        }
        if (err == 0 && !done) {
            /* The row keeps another peer (or a newer report of this one):
             * the books alone, and the peer goes to peers. */
            apply_bind_history(ap->upd_history, h);
            err = apply_step(db, ap->upd_history, eb, "apply history");
        }
        if (kept) {
            apply_pairs_mark(pairs, peer);
        }
    }
    for (size_t i = 0; torrents && i < m->ntorrents && err == 0; i++) {
        sqlite3_bind_int64(ap->add_transferred, 1, m->torrents[i].id);
        sqlite3_bind_int64(ap->add_transferred, 2, apply_clamp(m->torrents[i].n, 0));
        err = apply_step(db, ap->add_transferred, eb, "apply transferred");
    }
    return err;
}

/* What is written per delta, not summed: a snatch, a suspicious upload,
 * the peer's newest report. */
static int apply_events(sqlite3 *db, struct sqlite_apply *ap, uint32_t kinds,
                        const struct acct_delta *d, const struct apply_pairs *pairs,
                        struct mk_errbuf *eb)
{
    int err = 0;
    bool users = kinds & STORE_KIND_USERS, torrents = kinds & STORE_KIND_TORRENTS;
    if (d->snatch) {
        /* Both kinds keep the snatch row: the torrents' backend counts a
         * snatch only when its own row is new, wherever the users live. */
        bool created = false;
        if (users || torrents) {
            sqlite3_bind_int64(ap->add_snatch, 1, d->user_id);
            sqlite3_bind_int64(ap->add_snatch, 2, d->torrent_id);
            sqlite3_bind_int64(ap->add_snatch, 3, d->at);
            err = apply_step(db, ap->add_snatch, eb, "apply snatch");
            /* Count a snatch only when this insert created it: a replayed batch
             * or a client sending completed twice adds nothing. */
            created = err == 0 && sqlite3_changes(db) == 1;
        }
        if (err == 0 && torrents && created) {
            sqlite3_bind_int64(ap->bump_snatches, 1, d->torrent_id);
            err = apply_step(db, ap->bump_snatches, eb, "apply snatch count");
        }
        if (err == 0 && users) {
            sqlite3_bind_int64(ap->mark_completed, 1, d->user_id);
            sqlite3_bind_int64(ap->mark_completed, 2, d->torrent_id);
            sqlite3_bind_int64(ap->mark_completed, 3, d->at);
            err = apply_step(db, ap->mark_completed, eb, "apply completion");
        }
    }
    if (err == 0 && users && d->suspicious) {
        static const char *const reasons[] = {"", "no_leechers", "too_fast", "unknown"};
        sqlite3_bind_int64(ap->add_suspicious, 1, d->user_id);
        sqlite3_bind_int64(ap->add_suspicious, 2, d->torrent_id);
        sqlite3_bind_int64(ap->add_suspicious, 3, d->at);
        sqlite3_bind_int64(ap->add_suspicious, 4, apply_clamp(d->suspicious_up, d->user_id));
        sqlite3_bind_text(ap->add_suspicious, 5, reasons[d->suspicious & 3], -1, SQLITE_STATIC);
        err = apply_step(db, ap->add_suspicious, eb, "apply suspicious");
    }
    if (err == 0 && (kinds & STORE_KIND_PEERS) && d->has_peer && !apply_pairs_kept(pairs, d)) {
        /* Most reports update a row, so the UPDATE goes first; when it
         * changes none, the peer is new or the store holds a newer report,
         * and the upsert inserts the first and leaves the second. A peer new
         * to its swarm most likely has no row: the upsert alone, without a
         * seek that finds nothing. */
        bool changed = false;
        if (!d->peer.fresh) {
            apply_bind_peer(ap->upd_peer, d);
            err = apply_step(db, ap->upd_peer, eb, "put peer");
            changed = err == 0 && sqlite3_changes(db) > 0;
        }
        if (err == 0 && !changed) {
            apply_bind_peer(ap->put_peer, d);
            err = apply_step(db, ap->put_peer, eb, "put peer");
        }
    }
    return err;
}

/* The batch in one transaction; with ids, the nids segments are recorded in
 * the same transaction, and if any was there already all is rolled back. */
int sqlite_apply_run(sqlite3 *db, struct sqlite_apply *ap, const struct store_segment_id *ids,
                     size_t nids, const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    struct store_sums m;
    if (sums_build(&m, rows, n) < 0) {
        return mk_fail(eb, MK_ENOMEM, "sqlite: out of memory summing %zu deltas", n);
    }
    if (!ap->applies) {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA cache_size = -%d", SQLITE_APPLY_CACHE_KIB);
        ap->applies = apply_exec(db, sql, eb) == 0;
    }
    /* IMMEDIATE takes the write lock up front, so a busy database fails here
     * and not half-way through the batch. */
    int err = apply_exec(db, "BEGIN IMMEDIATE", eb);
    if (err < 0) {
        sums_free(&m);
        return err;
    }
    for (size_t k = 0; k < nids && err == 0; k++) {
        const struct store_segment_id *id = &ids[k];
        sqlite3_bind_int64(ap->mark_segment, 1, (sqlite3_int64)id->boot);
        sqlite3_bind_int64(ap->mark_segment, 2, id->writer);
        sqlite3_bind_int64(ap->mark_segment, 3, (sqlite3_int64)id->seq);
        sqlite3_bind_int64(ap->mark_segment, 4,
                           (sqlite3_int64)(id->records ? id->records : (nids == 1 ? n : 0)));
        err = apply_step(db, ap->mark_segment, eb, "mark segment");
        if (err == 0 && sqlite3_changes(db) == 0) {
            apply_rollback(db);
            sums_free(&m);
            return MK_EEXIST;
        }
    }
    uint32_t kinds = nids && ids[0].kinds ? ids[0].kinds : STORE_KIND_ALL;
    struct apply_pairs pairs = {.rows = rows};
    if (err == 0 && (kinds & STORE_KIND_USERS) && (kinds & STORE_KIND_PEERS) &&
        apply_pairs_build(&pairs, &m, rows, n) < 0) {
        err = mk_fail(eb, MK_ENOMEM, "sqlite: out of memory pairing %zu deltas", n);
    }
    if (err == 0) {
        err = apply_sums(db, ap, kinds, &m, &pairs, eb);
    }
    for (size_t i = 0; i < n && err == 0; i++) {
        err = apply_events(db, ap, kinds, &rows[i], &pairs, eb);
    }
    apply_pairs_free(&pairs);
    if (err == 0) {
        err = apply_exec(db, "COMMIT", eb);
    }
    if (err < 0) {
        apply_rollback(db);
    }
    sums_free(&m);
    return err;
}
