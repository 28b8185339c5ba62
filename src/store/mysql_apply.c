/* store/mysql_apply.c: the mysql backend's apply() and apply_segment().
 *
 * Owns: writing one batch of deltas (the books, history, snatches,
 * suspicious uploads, peers) in one transaction, and recording the
 * segment's id in journal_applied in that same transaction.
 * Not here: the connection and the runners (mysql.c), retrying a batch
 * that met MK_EUNAVAIL (acct/flusher.c).
 * Invariants: all or nothing (any failure rolls the whole batch back);
 * rows are summed first, per user, per (user, torrent) and per torrent,
 * and each summed row is written once, in id order, so concurrent nodes
 * take row locks in the same order; counters add with saturation at
 * 2^64 - 1, so one absurd delta cannot wedge the flusher on an
 * out-of-range error.
 *
 * Statements carry many rows each (MY_BATCH_ROWS, MY_BATCH_BYTES): a
 * multi-table UPDATE joined to a derived table of the sums for users and
 * torrents, multi-row INSERT ... ON DUPLICATE KEY UPDATE for history and
 * peers. Only a snatch is one statement per row (prepared): whether its
 * insert created the row decides whether the torrent's count moves.
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

/* The batch's sums (store/sums.h), and the new snatches per torrent, which
 * are known only while the snatch rows are inserted. */
struct my_sums {
    struct store_sums s;
    struct sum_torrent *snatched;
    size_t nsnatched;
};

static void my_sums_free(struct my_sums *m)
{
    sums_free(&m->s);
    free(m->snatched);
}

static int my_sums_build(struct my_sums *m, const struct acct_delta *rows, size_t n)
{
    m->nsnatched = 0;
    m->snatched = calloc(n ? n : 1, sizeof(*m->snatched));
    if (!m->snatched || sums_build(&m->s, rows, n) != 0) {
        free(m->snatched);
        m->snatched = NULL;
        return MK_ENOMEM;
    }
    return 0;
}

/* ---- batched statements ---------------------------------------------------- */

/* One statement of many rows: head, the rows joined by sep, tail; sent when
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

static void my_put_users(struct my_batch *b, const struct my_sums *m)
{
    my_batch_start(b, "UPDATE (", " UNION ALL ",
                   ") d STRAIGHT_JOIN users u ON u.id = d.id SET "
                   MY_SAT_ADD("u.uploaded", "d.cu") ", " MY_SAT_ADD("u.downloaded", "d.cd") ", "
                   MY_SAT_ADD("u.raw_uploaded", "d.ru") ", "
                   MY_SAT_ADD("u.raw_downloaded", "d.rd") ", "
                   MY_SAT_ADD("u.seed_time", "d.st") ", " MY_SAT_ADD("u.leech_time", "d.lt") ", "
                   MY_SAT_ADD("u.bonus", "d.bo") ", " MY_SAT_ADD("u.announces", "d.an"));
    for (size_t i = 0; i < m->s.nusers; i++) {
        const uint64_t *v = m->s.users[i].v;
        my_sqlf(my_batch_row(b),
                "SELECT %" PRIu32 " AS id, %" PRIu64 " AS cu, %" PRIu64 " AS cd, %" PRIu64
                " AS ru, %" PRIu64 " AS rd, %" PRIu64 " AS st, %" PRIu64 " AS lt, %" PRIu64
                " AS bo, %" PRIu64 " AS an",
                m->s.users[i].id, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]);
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
    my_batch_start(b, "UPDATE (", " UNION ALL ", tail);
    for (size_t i = 0; i < n; i++) {
        my_sqlf(my_batch_row(b), "SELECT %" PRIu32 " AS id, %" PRIu64 " AS n", v[i].id, v[i].n);
        my_batch_row_done(b);
    }
    my_batch_send(b);
}

/* Each snatch's row, one prepared statement each: the torrent's count moves
 * only when this insert created the row (1 row affected; an existing row is
 * left as it was, 0), so a replayed batch, a client sending completed twice
 * or another node's insert adds nothing. */
static const char MY_ADD_SNATCH[] = "INSERT INTO snatches (user_id, torrent_id, at)"
                                    " VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE at = at";

static void my_put_snatches(struct my_batch *b, struct my_sums *m, uint32_t kinds,
                            const struct acct_delta *rows, size_t n)
{
    bool users = kinds & STORE_KIND_USERS, torrents = kinds & STORE_KIND_TORRENTS;
    if (!users && !torrents) {
        return;
    }
    for (size_t i = 0; i < n && b->err == 0; i++) {
        const struct acct_delta *d = &rows[i];
        if (!d->snatch) {
            continue;
        }
        const int64_t v[3] = {d->user_id, d->torrent_id, d->at};
        uint64_t added = 0;
        b->err = my_exec_ints(b->s, MY_ADD_SNATCH, v, 3, &added, b->eb);
        if (b->err == 0 && added == 1 && torrents) {
            m->snatched[m->nsnatched++] = (struct sum_torrent){.id = d->torrent_id, .n = 1};
        }
    }
    my_sql_reset(&b->q);
    if (users) {
        my_batch_start(b,
                       "INSERT INTO user_torrents (user_id, torrent_id, first_announce,"
                       " last_announce, completed_at) VALUES ",
                       ", ",
                       " ON DUPLICATE KEY UPDATE"
                       " completed_at = COALESCE(completed_at, VALUES(completed_at))");
        for (size_t i = 0; i < n; i++) {
            if (rows[i].snatch) {
                my_sqlf(my_batch_row(b),
                        "(%" PRIu32 ", %" PRIu32 ", %" PRId64 ", %" PRId64 ", %" PRId64 ")",
                        rows[i].user_id, rows[i].torrent_id, rows[i].at, rows[i].at, rows[i].at);
                my_batch_row_done(b);
            }
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

static void my_put_peers(struct my_batch *b, const struct acct_delta *rows, size_t n)
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
    for (size_t i = 0; i < n; i++) {
        const struct acct_delta *d = &rows[i];
        if (!d->has_peer) {
            continue;
        }
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
        my_put_peers(&b, rows, n);
    }
    my_sql_free(&b.q);
    my_sums_free(&m);
    return b.err;
}

/* The batch in one transaction; with `once`, the segment is recorded in the
 * same transaction first, and a segment already there is rolled back
 * untouched. */
static int my_apply_batch(struct my_store *s, const struct store_segment_id *once,
                          const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    int err = my_begin(s, "START TRANSACTION", eb);
    if (err < 0) {
        return err;
    }
    if (once) {
        struct my_sql q = {0};
        /* An existing id is left as it was: 0 rows affected. */
        my_sqlf(&q,
                "INSERT INTO journal_applied (boot, writer, seq, records, applied_at)"
                " VALUES (%" PRIu64 ", %" PRIu32 ", %" PRIu64 ", %" PRIu64 ", UNIX_TIMESTAMP())"
                " ON DUPLICATE KEY UPDATE boot = boot",
                once->boot, once->writer, once->seq, once->records ? once->records : (uint64_t)n);
        uint64_t added = 0;
        err = my_exec(s, &q, NULL, &added, eb);
        my_sql_free(&q);
        if (err == 0 && added == 0) {
            my_end(s, MK_EEXIST, eb);
            return mk_fail(eb, MK_EEXIST,
                           "mysql: segment %" PRIu64 "/%" PRIu32 "/%" PRIu64
                           " was applied before",
                           once->boot, once->writer, once->seq);
        }
    }
    if (err == 0 && n > 0) {
        err = my_apply_rows(s, once && once->kinds ? once->kinds : STORE_KIND_ALL, rows, n, eb);
    }
    return my_end(s, err, eb);
}

int my_apply(void *ctx, const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    return my_apply_batch(ctx, NULL, rows, n, eb);
}

int my_apply_segment(void *ctx, const struct store_segment_id *id, const struct acct_delta *rows,
                     size_t n, struct mk_errbuf *eb)
{
    return my_apply_batch(ctx, id, rows, n, eb);
}
