/* store/mysql_apply.c: the mysql backend's apply(), apply_segment() and
 * apply_segments().
 *
 * Owns: writing one batch of deltas (the books, history, snatches,
 * suspicious uploads, peers) in one transaction, and recording the ids of
 * the journal segments it holds in journal_applied in that same
 * transaction (a group of segments: all of them, or nothing at all).
 * Not here: the connection and the runners (mysql.c), merging a group's
 * segments and retrying a batch that met MK_EUNAVAIL (acct/flusher.c).
 * Invariants: all or nothing (any failure rolls the whole batch back);
 * rows are summed first, per user, per (user, torrent) and per torrent,
 * snatches and peers picked one per key, and each row is written once, in
 * key order, so concurrent nodes take row locks in the same order;
 * counters add with saturation at 2^64 - 1, so one absurd delta cannot
 * wedge the flusher on an out-of-range error.
 *
 * Statements carry many rows each (MY_BATCH_ROWS, MY_BATCH_BYTES): a
 * multi-table UPDATE joined to a derived table of the sums for users and
 * torrents, multi-row INSERT ... ON DUPLICATE KEY UPDATE for history,
 * snatches and peers. A snatch moves its torrent's count only when its row
 * is new; a mark on the rows an insert creates tells which (MY_SNATCH_MARK),
 * where MySQL 5.7 has no RETURNING. Values are literals (mysql_sql.c):
 * integers printed, bytes as hex, so nothing can break out of a statement.
 */
#include "store/mysql_admin.h"
#include "store/sums.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Rows per batched statement and the size past which it is sent anyway. */
#define MY_BATCH_ROWS 500
#define MY_BATCH_BYTES (256 * 1024)

/* col = col + v, stopping at the column's maximum instead of failing. */
#define MY_SAT_ADD(col, v) col " = " col " + LEAST(" v ", 18446744073709551615 - " col ")"

/* A batch's deltas picked by key: each one with its place in the batch, so
 * that sorting keeps "first in the batch" (snatches) or "newest, then first"
 * (peers) as the one that counts. */
struct my_pick {
    const struct acct_delta *d;
    size_t i;
};

/* The batch's sums (store/sums.h); the new snatches per torrent, which are
 * known only once the snatch rows are inserted; room to pick snatches and
 * peers. Each array holds n entries: a batch has no more of any. */
struct my_sums {
    struct store_sums s;
    struct sum_torrent *snatched;
    size_t nsnatched, cap;
    struct my_pick *picks;
};

static void my_sums_free(struct my_sums *m)
{
    sums_free(&m->s);
    free(m->snatched);
    free(m->picks);
}

static int my_sums_build(struct my_sums *m, const struct acct_delta *rows, size_t n)
{
    m->nsnatched = 0;
    m->cap = n;
    m->snatched = calloc(n ? n : 1, sizeof(*m->snatched));
    m->picks = calloc(n ? n : 1, sizeof(*m->picks));
    if (!m->snatched || !m->picks || sums_build(&m->s, rows, n) != 0) {
        free(m->snatched);
        free(m->picks);
        m->snatched = NULL;
        m->picks = NULL;
        return MK_ENOMEM;
    }
    return 0;
}

/* ---- batched statements ---------------------------------------------------- */

/* One statement of many rows: head, the rows joined by sep (or as
 * my_derived_row writes them), tail; sent when
 * it holds MY_BATCH_ROWS rows or MY_BATCH_BYTES, and at the end. After a
 * failure, does nothing and keeps the first error. */
struct my_batch {
    struct my_store *s;
    struct mk_errbuf *eb;
    struct my_sql q;
    const char *head, *sep, *tail;
    size_t rows;
    int err;
};

static void my_batch_start(struct my_batch *b, const char *head, const char *sep,
                           const char *tail)
{
    b->head = head;
    b->sep = sep;
    b->tail = tail;
    b->rows = 0;
    my_sql_reset(&b->q);
}

/* The statement, ready for one more row's text. */
static struct my_sql *my_batch_row(struct my_batch *b)
{
    my_sqlf(&b->q, "%s", b->rows++ ? b->sep : b->head);
    return &b->q;
}

static void my_batch_send(struct my_batch *b)
{
    if (b->rows > 0 && b->err == 0) {
        my_sqlf(&b->q, "%s", b->tail);
        b->err = my_exec(b->s, &b->q, NULL, NULL, b->eb);
    }
    b->rows = 0;
    my_sql_reset(&b->q);
}

static void my_batch_row_done(struct my_batch *b)
{
    if (b->rows >= MY_BATCH_ROWS || b->q.len >= MY_BATCH_BYTES) {
        my_batch_send(b);
    }
}

/* One row of a derived table of n named integers: `SELECT v AS name, ...`
 * for the first (it names the columns), then, where the server has table
 * value constructors, ` UNION ALL VALUES (v, ...), (v, ...)`, else a
 * ` UNION ALL SELECT ...` each. A SELECT per row costs the server a query
 * block to parse and plan: with 500 rows, ~35 us a row against ~20 with
 * VALUES, the update included (MariaDB 10.11, profiled). */
static void my_derived_row(struct my_batch *b, const char *const *names, const uint64_t *v,
                           int n)
{
    bool values = my_has_values(b->s);
    struct my_sql *q = &b->q;
    size_t row = b->rows++;
    if (row == 0 || !values) {
        my_sqlf(q, "%s", row == 0 ? b->head : " UNION ALL ");
        for (int i = 0; i < n; i++) {
            my_sqlf(q, "%s%" PRIu64 " AS %s", i ? ", " : "SELECT ", v[i], names[i]);
        }
        return;
    }
    my_sqlf(q, "%s", row == 1 ? " UNION ALL VALUES " : ", ");
    for (int i = 0; i < n; i++) {
        my_sqlf(q, "%s%" PRIu64, i ? ", " : "(", v[i]);
    }
    my_sqlf(q, ")");
}

static void my_put_users(struct my_batch *b, const struct my_sums *m)
{
    static const char *const names[] = {"id", "cu", "cd", "ru", "rd", "st", "lt", "bo", "an"};
    _Static_assert(sizeof(names) / sizeof(names[0]) == 1 + SUM_USER_FIELDS,
                   "a column name for the id and each of a user's sums, in enum sum_field order");
    my_batch_start(b, "UPDATE (", NULL,
                   ") d STRAIGHT_JOIN users u ON u.id = d.id SET "
                   MY_SAT_ADD("u.uploaded", "d.cu") ", " MY_SAT_ADD("u.downloaded", "d.cd") ", "
                   MY_SAT_ADD("u.raw_uploaded", "d.ru") ", "
                   MY_SAT_ADD("u.raw_downloaded", "d.rd") ", "
                   MY_SAT_ADD("u.seed_time", "d.st") ", " MY_SAT_ADD("u.leech_time", "d.lt") ", "
                   MY_SAT_ADD("u.bonus", "d.bo") ", " MY_SAT_ADD("u.announces", "d.an"));
    for (size_t i = 0; i < m->s.nusers; i++) {
        uint64_t v[1 + SUM_USER_FIELDS] = {m->s.users[i].id};
        memcpy(v + 1, m->s.users[i].v, sizeof(m->s.users[i].v));
        my_derived_row(b, names, v, 1 + SUM_USER_FIELDS);
        my_batch_row_done(b);
    }
    my_batch_send(b);
}

static void my_put_history(struct my_batch *b, const struct my_sums *m)
{
    my_batch_start(b,
                   "INSERT INTO user_torrents (user_id, torrent_id, uploaded, downloaded,"
                   " raw_uploaded, raw_downloaded, seed_time, leech_time, announces,"
                   " first_announce, last_announce) VALUES ",
                   ", ",
                   " ON DUPLICATE KEY UPDATE "
                   MY_SAT_ADD("uploaded", "VALUES(uploaded)") ", "
                   MY_SAT_ADD("downloaded", "VALUES(downloaded)") ", "
                   MY_SAT_ADD("raw_uploaded", "VALUES(raw_uploaded)") ", "
                   MY_SAT_ADD("raw_downloaded", "VALUES(raw_downloaded)") ", "
                   MY_SAT_ADD("seed_time", "VALUES(seed_time)") ", "
                   MY_SAT_ADD("leech_time", "VALUES(leech_time)") ", "
                   MY_SAT_ADD("announces", "VALUES(announces)") ","
                   " first_announce = LEAST(first_announce, VALUES(first_announce)),"
                   " last_announce = GREATEST(last_announce, VALUES(last_announce))");
    for (size_t i = 0; i < m->s.nhistory; i++) {
        const struct sum_history *h = &m->s.history[i];
        my_sqlf(my_batch_row(b),
                "(%" PRIu32 ", %" PRIu32 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64
                ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRId64 ", %" PRId64 ")",
                h->user_id, h->torrent_id, h->v[0], h->v[1], h->v[2], h->v[3], h->v[4], h->v[5],
                h->v[6], h->first, h->last);
        my_batch_row_done(b);
    }
    my_batch_send(b);
}

/* Adds v[i].n to column col of each torrent (transferred, snatches). */
static void my_put_torrents(struct my_batch *b, const struct sum_torrent *v, size_t n,
                            const char *tail)
{
    static const char *const names[] = {"id", "n"};
    my_batch_start(b, "UPDATE (", NULL, tail);
    for (size_t i = 0; i < n; i++) {
        my_derived_row(b, names, (const uint64_t[]){v[i].id, v[i].n}, 2);
        my_batch_row_done(b);
    }
    my_batch_send(b);
}

/* ---- snatches ------------------------------------------------------------------- */

static int my_pick_cmp_snatch(const void *a, const void *b)
{
    const struct my_pick *x = a, *y = b;
    if (x->d->user_id != y->d->user_id) {
        return x->d->user_id < y->d->user_id ? -1 : 1;
    }
    if (x->d->torrent_id != y->d->torrent_id) {
        return x->d->torrent_id < y->d->torrent_id ? -1 : 1;
    }
    return x->i < y->i ? -1 : x->i > y->i;
}

/* The snatches of rows[0..n), one per (user, torrent): the first in the
 * batch, as one row per delta inserted in order would keep. Sorted by the
 * snatches table's key, so nodes lock its rows in the same order. */
static size_t my_pick_snatches(struct my_pick *v, const struct acct_delta *rows, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].snatch) {
            v[k++] = (struct my_pick){&rows[i], i};
        }
    }
    qsort(v, k, sizeof(*v), my_pick_cmp_snatch);
    size_t keep = 0;
    for (size_t i = 0; i < k; i++) {
        if (keep == 0 || v[keep - 1].d->user_id != v[i].d->user_id ||
            v[keep - 1].d->torrent_id != v[i].d->torrent_id) {
            v[keep++] = v[i];
        }
    }
    return keep;
}

/* Which snatch rows an insert created, without a statement per row: new
 * rows go in with at moved down by MY_SNATCH_MARK, existing ones are left
 * as they are; rows still below MY_SNATCH_BELOW after the insert are this
 * transaction's own (it holds their locks, other sessions read the committed
 * past) and are counted, then moved back. A real at is kept within
 * +-MY_SNATCH_AT_MAX (2^60 s: far past any clock) so it never looks marked. */
#define MY_SNATCH_MARK (INT64_C(1) << 62)
#define MY_SNATCH_BELOW (-(INT64_C(1) << 61))
#define MY_SNATCH_AT_MAX (INT64_C(1) << 60)

static void my_sql_snatch_keys(struct my_sql *q, const struct my_pick *v, size_t n)
{
    my_sqlf(q, "(");
    for (size_t i = 0; i < n; i++) {
        my_sqlf(q, "%s(user_id = %" PRIu32 " AND torrent_id = %" PRIu32 ")", i ? " OR " : "",
                v[i].d->user_id, v[i].d->torrent_id);
    }
    my_sqlf(q, ") AND at < %" PRId64, MY_SNATCH_BELOW);
}

static int my_snatch_count_row(const struct my_row *r, void *arg)
{
    struct my_sums *m = arg;
    if (m->nsnatched == m->cap) {
        return MK_EIO; /* more torrents than the keys asked about: not this query's answer */
    }
    m->snatched[m->nsnatched++] =
        (struct sum_torrent){.id = (uint32_t)my_col_u64(r, 0), .n = my_col_u64(r, 1)};
    return 0;
}

/* Inserts the snatch rows v[0..n) (one chunk) and, with torrents, adds the
 * ones it created to m->snatched: a replayed batch, a client sending
 * completed twice or another node's insert counts nothing. */
static void my_put_snatch_chunk(struct my_batch *b, struct my_sums *m, bool torrents,
                                const struct my_pick *v, size_t n)
{
    struct my_sql *q = &b->q;
    my_sql_reset(q);
    my_sqlf(q, "INSERT INTO snatches (user_id, torrent_id, at) VALUES ");
    for (size_t i = 0; i < n; i++) {
        int64_t at = v[i].d->at;
        at = at > MY_SNATCH_AT_MAX ? MY_SNATCH_AT_MAX : at;
        at = at < -MY_SNATCH_AT_MAX ? -MY_SNATCH_AT_MAX : at;
        my_sqlf(q, "%s(%" PRIu32 ", %" PRIu32 ", %" PRId64 ")", i ? ", " : "", v[i].d->user_id,
                v[i].d->torrent_id, at - MY_SNATCH_MARK);
    }
    /* An existing row is left as it was: 0 rows affected. */
    my_sqlf(q, " ON DUPLICATE KEY UPDATE at = at");
    uint64_t added = 0;
    b->err = my_exec(b->s, q, NULL, &added, b->eb);
    if (b->err != 0 || added == 0) {
        return;
    }
    if (torrents && added == n) {
        for (size_t i = 0; i < n; i++) {
            m->snatched[m->nsnatched++] = (struct sum_torrent){.id = v[i].d->torrent_id, .n = 1};
        }
    } else if (torrents) {
        my_sql_reset(q);
        my_sqlf(q, "SELECT torrent_id, COUNT(*) FROM snatches WHERE ");
        my_sql_snatch_keys(q, v, n);
        my_sqlf(q, " GROUP BY torrent_id");
        b->err = my_stream(b->s, q, NULL, "new snatches", my_snatch_count_row, m, b->eb);
    }
    if (b->err == 0) {
        my_sql_reset(q);
        my_sqlf(q, "UPDATE snatches SET at = at + %" PRId64 " WHERE ", MY_SNATCH_MARK);
        my_sql_snatch_keys(q, v, n);
        b->err = my_exec(b->s, q, NULL, NULL, b->eb);
    }
}

/* Both kinds keep the snatch row: the torrents' backend counts a snatch
 * only when its own row is new, wherever the users live. */
static void my_put_snatches(struct my_batch *b, struct my_sums *m, uint32_t kinds,
                            const struct acct_delta *rows, size_t n)
{
    bool users = kinds & STORE_KIND_USERS, torrents = kinds & STORE_KIND_TORRENTS;
    if (!users && !torrents) {
        return;
    }
    struct my_pick *v = m->picks;
    size_t nv = my_pick_snatches(v, rows, n);
    for (size_t i = 0; i < nv && b->err == 0; i += MY_BATCH_ROWS) {
        my_put_snatch_chunk(b, m, torrents, v + i, nv - i < MY_BATCH_ROWS ? nv - i : MY_BATCH_ROWS);
    }
    my_sql_reset(&b->q);
    if (users) {
        my_batch_start(b,
                       "INSERT INTO user_torrents (user_id, torrent_id, first_announce,"
                       " last_announce, completed_at) VALUES ",
                       ", ",
                       " ON DUPLICATE KEY UPDATE"
                       " completed_at = COALESCE(completed_at, VALUES(completed_at))");
        for (size_t i = 0; i < nv; i++) {
            const struct acct_delta *d = v[i].d;
            my_sqlf(my_batch_row(b),
                    "(%" PRIu32 ", %" PRIu32 ", %" PRId64 ", %" PRId64 ", %" PRId64 ")",
                    d->user_id, d->torrent_id, d->at, d->at, d->at);
            my_batch_row_done(b);
        }
        my_batch_send(b);
    }
    m->nsnatched = sums_merge_torrents(m->snatched, m->nsnatched);
    my_put_torrents(b, m->snatched, m->nsnatched,
                    ") d STRAIGHT_JOIN torrents t ON t.id = d.id SET "
                    MY_SAT_ADD("t.snatches", "d.n"));
}

static void my_put_suspicious(struct my_batch *b, const struct acct_delta *rows, size_t n)
{
    static const char *const reasons[] = {"", "no_leechers", "too_fast", "unknown"};
    my_batch_start(b, "INSERT INTO suspicious (user_id, torrent_id, at, uploaded, reason) VALUES ",
                   ", ", "");
    for (size_t i = 0; i < n; i++) {
        const struct acct_delta *d = &rows[i];
        if (d->suspicious) {
            struct my_sql *q = my_batch_row(b);
            my_sqlf(q, "(%" PRIu32 ", %" PRIu32 ", %" PRId64 ", %" PRIu64 ", '%s')", d->user_id,
                    d->torrent_id, d->at, d->suspicious_up, reasons[d->suspicious & 3]);
            my_batch_row_done(b);
        }
    }
    my_batch_send(b);
}

/* Newest version wins: each column keeps its value unless the incoming
 * report is newer; version is assigned last, since MySQL evaluates the
 * assignments left to right and later ones see the earlier ones' values. */
#define MY_IF_NEWER(col) col " = IF(VALUES(version) > version, VALUES(" col "), " col ")"

static int my_pick_cmp_peer(const void *a, const void *b)
{
    const struct my_pick *x = a, *y = b;
    if (x->d->torrent_id != y->d->torrent_id) {
        return x->d->torrent_id < y->d->torrent_id ? -1 : 1;
    }
    if (x->d->user_id != y->d->user_id) {
        return x->d->user_id < y->d->user_id ? -1 : 1;
    }
    int c = memcmp(x->d->peer.peer_id, y->d->peer.peer_id, 20);
    if (c != 0) {
        return c;
    }
    if (x->d->peer.version != y->d->peer.version) {
        return x->d->peer.version > y->d->peer.version ? -1 : 1;
    }
    return x->i < y->i ? -1 : x->i > y->i;
}

/* The peers of rows[0..n), one per (torrent, user, peer_id): the newest
 * report, the first of equals (a later one of the same version is not
 * newer, as MY_IF_NEWER says). Sorted by the peers table's key, so nodes
 * lock its rows in the same order. */
static size_t my_pick_peers(struct my_pick *v, const struct acct_delta *rows, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].has_peer) {
            v[k++] = (struct my_pick){&rows[i], i};
        }
    }
    qsort(v, k, sizeof(*v), my_pick_cmp_peer);
    size_t keep = 0;
    for (size_t i = 0; i < k; i++) {
        const struct acct_delta *p = keep ? v[keep - 1].d : NULL;
        if (!p || p->torrent_id != v[i].d->torrent_id || p->user_id != v[i].d->user_id ||
            memcmp(p->peer.peer_id, v[i].d->peer.peer_id, 20) != 0) {
            v[keep++] = v[i];
        }
    }
    return keep;
}

static void my_put_peers(struct my_batch *b, struct my_sums *m, const struct acct_delta *rows,
                         size_t n)
{
    my_batch_start(b,
                   "INSERT INTO peers (torrent_id, user_id, peer_id, family, ip, port, uploaded,"
                   " downloaded, seeder, partial, last_seen, version, gone) VALUES ",
                   ", ",
                   " ON DUPLICATE KEY UPDATE " MY_IF_NEWER("family") ", " MY_IF_NEWER("ip") ", "
                   MY_IF_NEWER("port") ", " MY_IF_NEWER("uploaded") ", "
                   MY_IF_NEWER("downloaded") ", " MY_IF_NEWER("seeder") ", "
                   MY_IF_NEWER("partial") ", " MY_IF_NEWER("last_seen") ", "
                   MY_IF_NEWER("gone") ", " MY_IF_NEWER("version"));
    size_t nv = my_pick_peers(m->picks, rows, n);
    for (size_t i = 0; i < nv; i++) {
        const struct acct_delta *d = m->picks[i].d;
        const struct peer_row *p = &d->peer;
        bool v6 = p->family == 6;
        struct my_sql *q = my_batch_row(b);
        my_sqlf(q, "(%" PRIu32 ", %" PRIu32 ", ", d->torrent_id, d->user_id);
        my_sql_bytes(q, p->peer_id, 20);
        my_sqlf(q, ", %d, ", v6 ? 6 : 4);
        my_sql_bytes(q, p->ip, v6 ? 16 : 4);
        my_sqlf(q, ", %u, %" PRIu64 ", %" PRIu64 ", %d, %d, %" PRId64 ", %" PRId64 ", %d)",
                (unsigned)p->port, p->uploaded, p->downloaded, p->seeder, p->partial,
                p->last_seen, p->version, p->gone);
        my_batch_row_done(b);
    }
    my_batch_send(b);
}

/* ---- the batch ---------------------------------------------------------------- */

static int my_apply_rows(struct my_store *s, uint32_t kinds, const struct acct_delta *rows,
                         size_t n, struct mk_errbuf *eb)
{
    struct my_sums m;
    if (my_sums_build(&m, rows, n) < 0) {
        return mk_fail(eb, MK_ENOMEM, "mysql: out of memory summing %zu deltas", n);
    }
    struct my_batch b = {.s = s, .eb = eb};
    if (kinds & STORE_KIND_USERS) {
        my_put_users(&b, &m);
        my_put_history(&b, &m);
    }
    if (kinds & STORE_KIND_TORRENTS) {
        my_put_torrents(&b, m.s.torrents, m.s.ntorrents,
                        ") d STRAIGHT_JOIN torrents t ON t.id = d.id SET "
                        MY_SAT_ADD("t.transferred", "d.n"));
    }
    my_put_snatches(&b, &m, kinds, rows, n);
    if (kinds & STORE_KIND_USERS) {
        my_put_suspicious(&b, rows, n);
    }
    if (kinds & STORE_KIND_PEERS) {
        my_put_peers(&b, &m, rows, n);
    }
    my_sql_free(&b.q);
    my_sums_free(&m);
    return b.err;
}

/* Records ids[0..nids) in journal_applied; MK_EEXIST, naming the first,
 * when any of them was there already. */
static int my_mark_segments(struct my_store *s, const struct store_segment_id *ids, size_t nids,
                            size_t n, struct mk_errbuf *eb)
{
    struct my_sql q = {0};
    my_sqlf(&q, "INSERT INTO journal_applied (boot, writer, seq, records, applied_at) VALUES ");
    for (size_t k = 0; k < nids; k++) {
        const struct store_segment_id *id = &ids[k];
        /* A group's rows are merged across its segments: 0 when unknown. */
        uint64_t records = id->records ? id->records : nids == 1 ? (uint64_t)n : 0;
        my_sqlf(&q, "%s(%" PRIu64 ", %" PRIu32 ", %" PRIu64 ", %" PRIu64 ", UNIX_TIMESTAMP())",
                k ? ", " : "", id->boot, id->writer, id->seq, records);
    }
    /* An existing id is left as it was: it counts 0 rows affected. */
    my_sqlf(&q, " ON DUPLICATE KEY UPDATE boot = boot");
    uint64_t added = 0;
    int err = my_exec(s, &q, NULL, &added, eb);
    my_sql_free(&q);
    if (err == 0 && added < nids) {
        err = mk_fail(eb, MK_EEXIST,
                      "mysql: segment %" PRIu64 "/%" PRIu32 "/%" PRIu64
                      "%s was applied before",
                      ids[0].boot, ids[0].writer, ids[0].seq,
                      nids > 1 ? " or another of its group" : "");
    }
    return err;
}

/* The batch in one transaction; with ids, the nids segments are recorded in
 * the same transaction first, and a group holding one recorded before is
 * rolled back untouched. */
static int my_apply_batch(struct my_store *s, const struct store_segment_id *ids, size_t nids,
                          const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    int err = my_begin(s, "START TRANSACTION", eb);
    if (err < 0) {
        return err;
    }
    if (nids > 0) {
        err = my_mark_segments(s, ids, nids, n, eb);
    }
    if (err == 0 && n > 0) {
        err = my_apply_rows(s, nids && ids[0].kinds ? ids[0].kinds : STORE_KIND_ALL, rows, n, eb);
    }
    return my_end(s, err, eb);
}

int my_apply(void *ctx, const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    return my_apply_batch(ctx, NULL, 0, rows, n, eb);
}

int my_apply_segment(void *ctx, const struct store_segment_id *id, const struct acct_delta *rows,
                     size_t n, struct mk_errbuf *eb)
{
    return my_apply_batch(ctx, id, 1, rows, n, eb);
}

int my_apply_segments(void *ctx, const struct store_segment_id *ids, size_t nids,
                      const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    return my_apply_batch(ctx, ids, nids, rows, n, eb);
}
