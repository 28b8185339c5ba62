/* store/pg_apply.c: the postgres backend's books: apply(), apply_segment()
 * and apply_segments() for store/pg.c's ops table.
 *
 * Owns: turning a batch of deltas into a few set-based statements, one per
 * table and chunk of PG_APPLY_CHUNK rows, each passing its columns as
 * binary arrays that the statement joins back into rows with unnest(); the
 * journal_applied rows that make a segment count once.
 * Why: a statement per delta cost the server ~140 us of CPU per announce
 * (parse, plan, executor start-up and a round of locking per row); one
 * statement per table pays those once per chunk, so the server's cost per
 * row is the index look-up and the row's new version.
 * Not here: the connection, prepared statements and error mapping (pg.c,
 * through pg_admin.h), summing the batch (store/sums.c), retrying a batch
 * (acct/flusher.c).
 * Invariants: a batch is one transaction and leaves nothing behind when it
 * fails; no statement names one row twice (ON CONFLICT DO UPDATE refuses
 * that), so rows are summed or deduplicated first; every statement that
 * may change existing rows takes them in key order, so concurrent nodes
 * lock rows alike (suspicious uploads are only inserted, in batch order).
 */
#include "store/pg_admin.h"
#include "store/sums.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* Rows per statement: big enough that a statement's fixed cost vanishes,
 * small enough that its parameters stay a few hundred kB. */
#define PG_APPLY_CHUNK 5000

/* BIGINT is signed; a counter delta past INT64_MAX is a bug upstream, but
 * refusing it would wedge the batch forever, so it is clamped and said. */
static int64_t pg_clamp(uint64_t v, uint32_t user_id)
{
    if (v > (uint64_t)INT64_MAX) {
        mk_log(MK_LOG_WARN, "store.pg", "user %" PRIu32 ": delta %" PRIu64 " clamped", user_id, v);
        return INT64_MAX;
    }
    return (int64_t)v;
}

/* ---- binary array parameters --------------------------------------------- */

/* Element types (pg_type.oid, the same in every PostgreSQL). array_recv
 * refuses an array whose element type is not the one the statement's
 * $n::type[] cast names. */
enum pg_oid {
    PG_OID_BOOL = 16,
    PG_OID_BYTEA = 17,
    PG_OID_INT8 = 20,
    PG_OID_TEXT = 25,
};

/* The most bytes one element of a type takes here: a peer_id (20), an
 * address (4 or 16), a suspicion's reason (at most 11). */
static size_t pg_oid_max(enum pg_oid oid)
{
    return oid == PG_OID_BOOL ? 1 : oid == PG_OID_INT8 ? 8 : 20;
}

/* One one-dimensional array in the binary format array_recv reads: ndim,
 * has-nulls flag, element type, the dimension's length and lower bound,
 * then each element as a 4-byte length and its bytes; all big-endian.
 * Sized at creation for its n elements, never grown. */
struct pg_array {
    unsigned char *buf;
    size_t len, cap;
    size_t max; /* bytes of one element at most */
};

#define PG_ARRAY_HEADER 20

static void pg_put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static int pg_array_init(struct pg_array *a, enum pg_oid oid, size_t n)
{
    a->max = pg_oid_max(oid);
    a->cap = PG_ARRAY_HEADER + n * (4 + a->max);
    a->len = PG_ARRAY_HEADER;
    a->buf = malloc(a->cap);
    if (!a->buf) {
        return MK_ENOMEM;
    }
    pg_put32(a->buf, 1);
    pg_put32(a->buf + 4, 0);
    pg_put32(a->buf + 8, oid);
    pg_put32(a->buf + 12, (uint32_t)n);
    pg_put32(a->buf + 16, 1);
    return 0;
}

static void pg_array_bytes(struct pg_array *a, const void *p, size_t len)
{
    /* A bug, not input: the array was sized for its elements. */
    if (len > a->max || a->len + 4 + len > a->cap) {
        abort();
    }
    pg_put32(a->buf + a->len, (uint32_t)len);
    memcpy(a->buf + a->len + 4, p, len);
    a->len += 4 + len;
}

static void pg_array_int8(struct pg_array *a, int64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)((uint64_t)v >> (56 - 8 * i));
    }
    pg_array_bytes(a, b, 8);
}

static void pg_array_bool(struct pg_array *a, bool v)
{
    unsigned char b = v ? 1 : 0;
    pg_array_bytes(a, &b, 1);
}

/* The columns of one statement's rows, one array each. */
struct pg_columns {
    int n;
    struct pg_array col[PG_PARAMS_MAX];
};

static void pg_columns_fini(struct pg_columns *c)
{
    for (int i = 0; i < c->n; i++) {
        free(c->col[i].buf);
    }
    c->n = 0;
}

/* Columns of the types types[0..ncols) for nrows rows. */
static int pg_columns_init(struct pg_columns *c, const enum pg_oid *types, int ncols,
                           size_t nrows, struct mk_errbuf *eb)
{
    c->n = 0;
    for (int i = 0; i < ncols; i++) {
        if (pg_array_init(&c->col[i], types[i], nrows) < 0) {
            pg_columns_fini(c);
            return mk_fail(eb, MK_ENOMEM, "postgres: out of memory for %zu rows", nrows);
        }
        c->n++;
    }
    return 0;
}

/* Runs sql with c's arrays as $1..$n, then frees them; *rows (if set) gets
 * how many rows the statement changed. */
static int pg_columns_run(struct pg_store *s, const char *sql, struct pg_columns *c, long *rows,
                          struct mk_errbuf *eb)
{
    struct pg_params p = {0};
    for (int i = 0; i < c->n; i++) {
        pg_param_bytes(&p, c->col[i].buf, c->col[i].len);
    }
    long unused;
    int err = pg_run_count(s, sql, &p, rows ? rows : &unused, eb);
    pg_columns_fini(c);
    return err;
}

/* ---- statements ------------------------------------------------------------ */

static const char PG_MARK_SEGMENTS[] =
    "INSERT INTO journal_applied (boot, writer, seq, records)"
    " SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[])"
    " ON CONFLICT DO NOTHING";
static const char PG_ADD_TRAFFIC[] =
    "UPDATE users u SET uploaded = u.uploaded + d.up, downloaded = u.downloaded + d.down,"
    " raw_uploaded = u.raw_uploaded + d.raw_up, raw_downloaded = u.raw_downloaded + d.raw_down,"
    " seed_time = u.seed_time + d.seed, leech_time = u.leech_time + d.leech,"
    " bonus = u.bonus + d.bonus, announces = u.announces + d.announces"
    " FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::int8[],"
    " $7::int8[], $8::int8[], $9::int8[])"
    " AS d(id, up, down, raw_up, raw_down, seed, leech, bonus, announces)"
    " WHERE u.id = d.id";
static const char PG_ADD_HISTORY[] =
    "INSERT INTO user_torrents AS h (user_id, torrent_id, uploaded, downloaded, raw_uploaded,"
    " raw_downloaded, seed_time, leech_time, announces, first_announce, last_announce)"
    " SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[],"
    " $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[])"
    " ON CONFLICT (user_id, torrent_id) DO UPDATE SET"
    " uploaded = h.uploaded + EXCLUDED.uploaded, downloaded = h.downloaded + EXCLUDED.downloaded,"
    " raw_uploaded = h.raw_uploaded + EXCLUDED.raw_uploaded,"
    " raw_downloaded = h.raw_downloaded + EXCLUDED.raw_downloaded,"
    " seed_time = h.seed_time + EXCLUDED.seed_time,"
    " leech_time = h.leech_time + EXCLUDED.leech_time,"
    " announces = h.announces + EXCLUDED.announces,"
    " first_announce = LEAST(h.first_announce, EXCLUDED.first_announce),"
    " last_announce = GREATEST(h.last_announce, EXCLUDED.last_announce)";
static const char PG_ADD_TRANSFERRED[] =
    "UPDATE torrents t SET transferred = t.transferred + d.bytes"
    " FROM unnest($1::int8[], $2::int8[]) AS d(id, bytes) WHERE t.id = d.id";
/* A snatch is counted only when this insert created its row: a replayed
 * batch, a client sending completed twice or another node's insert adds
 * nothing. */
static const char PG_ADD_SNATCHES[] =
    "WITH ins AS (INSERT INTO snatches (user_id, torrent_id, at)"
    " SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[])"
    " ON CONFLICT DO NOTHING RETURNING torrent_id)"
    " UPDATE torrents t SET snatches = t.snatches + c.n"
    " FROM (SELECT torrent_id, count(*) AS n FROM ins GROUP BY torrent_id) c"
    " WHERE t.id = c.torrent_id";
/* The first completion stays; a row that has one is not rewritten. */
static const char PG_MARK_COMPLETED[] =
    "INSERT INTO user_torrents AS h (user_id, torrent_id, first_announce, last_announce,"
    " completed_at) SELECT d.u, d.t, d.at, d.at, d.at"
    " FROM unnest($1::int8[], $2::int8[], $3::int8[]) AS d(u, t, at)"
    " ON CONFLICT (user_id, torrent_id) DO UPDATE SET completed_at = EXCLUDED.completed_at"
    " WHERE h.completed_at IS NULL";
static const char PG_ADD_SUSPICIOUS[] =
    "INSERT INTO suspicious (user_id, torrent_id, at, uploaded, reason)"
    " SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::text[])";
static const char PG_PUT_PEERS[] =
    "INSERT INTO peers AS p (torrent_id, user_id, peer_id, family, ip, port, uploaded,"
    " downloaded, seeder, partial, last_seen, version, gone, node_id)"
    " SELECT * FROM unnest($1::int8[], $2::int8[], $3::bytea[], $4::int8[], $5::bytea[],"
    " $6::int8[], $7::int8[], $8::int8[], $9::bool[], $10::bool[], $11::int8[], $12::int8[],"
    " $13::bool[], $14::int8[])"
    " ON CONFLICT (torrent_id, user_id, peer_id) DO UPDATE SET"
    " family = EXCLUDED.family, ip = EXCLUDED.ip, port = EXCLUDED.port,"
    " uploaded = EXCLUDED.uploaded, downloaded = EXCLUDED.downloaded,"
    " seeder = EXCLUDED.seeder, partial = EXCLUDED.partial, last_seen = EXCLUDED.last_seen,"
    " version = EXCLUDED.version, gone = EXCLUDED.gone, node_id = EXCLUDED.node_id"
    " WHERE EXCLUDED.version > p.version";

static size_t pg_chunk(size_t n, size_t at)
{
    return n - at < PG_APPLY_CHUNK ? n - at : PG_APPLY_CHUNK;
}

/* ---- the summed rows: users, history, torrents ----------------------------- */

static int pg_write_users(struct pg_store *s, const struct sum_user *v, size_t n,
                          struct mk_errbuf *eb)
{
    static const enum pg_oid types[1 + SUM_USER_FIELDS] = {
        PG_OID_INT8, PG_OID_INT8, PG_OID_INT8, PG_OID_INT8, PG_OID_INT8,
        PG_OID_INT8, PG_OID_INT8, PG_OID_INT8, PG_OID_INT8};
    int err = 0;
    for (size_t at = 0; at < n && err == 0; at += PG_APPLY_CHUNK) {
        size_t k = pg_chunk(n, at);
        struct pg_columns c;
        err = pg_columns_init(&c, types, 1 + SUM_USER_FIELDS, k, eb);
        for (size_t i = at; err == 0 && i < at + k; i++) {
            pg_array_int8(&c.col[0], v[i].id);
            for (int j = 0; j < SUM_USER_FIELDS; j++) {
                pg_array_int8(&c.col[1 + j], pg_clamp(v[i].v[j], v[i].id));
            }
        }
        if (err == 0) {
            err = pg_columns_run(s, PG_ADD_TRAFFIC, &c, NULL, eb);
        }
    }
    return err;
}

static int pg_write_history(struct pg_store *s, const struct sum_history *v, size_t n,
                            struct mk_errbuf *eb)
{
    enum { NCOLS = 2 + SUM_HISTORY_FIELDS + 2 };
    static const enum pg_oid types[NCOLS] = {
        PG_OID_INT8, PG_OID_INT8, PG_OID_INT8, PG_OID_INT8, PG_OID_INT8, PG_OID_INT8,
        PG_OID_INT8, PG_OID_INT8, PG_OID_INT8, PG_OID_INT8, PG_OID_INT8};
    int err = 0;
    for (size_t at = 0; at < n && err == 0; at += PG_APPLY_CHUNK) {
        size_t k = pg_chunk(n, at);
        struct pg_columns c;
        err = pg_columns_init(&c, types, NCOLS, k, eb);
        for (size_t i = at; err == 0 && i < at + k; i++) {
            const struct sum_history *h = &v[i];
            pg_array_int8(&c.col[0], h->user_id);
            pg_array_int8(&c.col[1], h->torrent_id);
            for (int j = 0; j < SUM_HISTORY_FIELDS; j++) {
                pg_array_int8(&c.col[2 + j], pg_clamp(h->v[j], h->user_id));
            }
            pg_array_int8(&c.col[2 + SUM_HISTORY_FIELDS], h->first);
            pg_array_int8(&c.col[3 + SUM_HISTORY_FIELDS], h->last);
        }
        if (err == 0) {
            err = pg_columns_run(s, PG_ADD_HISTORY, &c, NULL, eb);
        }
    }
    return err;
}

static int pg_write_transferred(struct pg_store *s, const struct sum_torrent *v, size_t n,
                                struct mk_errbuf *eb)
{
    static const enum pg_oid types[2] = {PG_OID_INT8, PG_OID_INT8};
    int err = 0;
    for (size_t at = 0; at < n && err == 0; at += PG_APPLY_CHUNK) {
        size_t k = pg_chunk(n, at);
        struct pg_columns c;
        err = pg_columns_init(&c, types, 2, k, eb);
        for (size_t i = at; err == 0 && i < at + k; i++) {
            pg_array_int8(&c.col[0], v[i].id);
            pg_array_int8(&c.col[1], pg_clamp(v[i].n, 0));
        }
        if (err == 0) {
            err = pg_columns_run(s, PG_ADD_TRANSFERRED, &c, NULL, eb);
        }
    }
    return err;
}

/* ---- what is written per announce: snatches, suspicions, peers -------------
 *
 * Each list holds pointers into the batch, sorted by the table's key, with
 * one entry per key where the table has one. */

static int pg_cmp_ids(uint32_t a, uint32_t b)
{
    return a < b ? -1 : a > b;
}

/* By (user, torrent), then the earlier delta first: it is the one whose
 * snatch time a statement per delta would have kept. */
static int pg_cmp_snatch(const void *a, const void *b)
{
    const struct acct_delta *x = *(const struct acct_delta *const *)a;
    const struct acct_delta *y = *(const struct acct_delta *const *)b;
    int c = pg_cmp_ids(x->user_id, y->user_id);
    c = c ? c : pg_cmp_ids(x->torrent_id, y->torrent_id);
    return c ? c : x < y ? -1 : x > y;
}

/* By (torrent, user, peer_id), then the newest report first and, of equal
 * versions, the earlier delta (a later one of the same version would not
 * have replaced it). */
static int pg_cmp_peer(const void *a, const void *b)
{
    const struct acct_delta *x = *(const struct acct_delta *const *)a;
    const struct acct_delta *y = *(const struct acct_delta *const *)b;
    int c = pg_cmp_ids(x->torrent_id, y->torrent_id);
    c = c ? c : pg_cmp_ids(x->user_id, y->user_id);
    c = c ? c : memcmp(x->peer.peer_id, y->peer.peer_id, 20);
    if (c == 0 && x->peer.version != y->peer.version) {
        c = x->peer.version > y->peer.version ? -1 : 1;
    }
    return c ? c : x < y ? -1 : x > y;
}

static bool pg_same_snatch(const struct acct_delta *x, const struct acct_delta *y)
{
    return x->user_id == y->user_id && x->torrent_id == y->torrent_id;
}

static bool pg_same_peer(const struct acct_delta *x, const struct acct_delta *y)
{
    return pg_same_snatch(x, y) && memcmp(x->peer.peer_id, y->peer.peer_id, 20) == 0;
}

/* Sorts v[0..n) with cmp and keeps the first of each run that same calls
 * one key; answers how many are left. */
static size_t pg_dedupe(const struct acct_delta **v, size_t n,
                        int (*cmp)(const void *, const void *),
                        bool (*same)(const struct acct_delta *, const struct acct_delta *))
{
    qsort(v, n, sizeof(*v), cmp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k == 0 || !same(v[k - 1], v[i])) {
            v[k++] = v[i];
        }
    }
    return k;
}

/* The snatch rows, counted on their torrents when new, and the history's
 * first completion. */
static int pg_write_snatches(struct pg_store *s, const struct acct_delta **v, size_t n,
                             struct mk_errbuf *eb)
{
    static const enum pg_oid types[3] = {PG_OID_INT8, PG_OID_INT8, PG_OID_INT8};
    int err = 0;
    for (size_t at = 0; at < n && err == 0; at += PG_APPLY_CHUNK) {
        size_t k = pg_chunk(n, at);
        struct pg_columns c;
        err = pg_columns_init(&c, types, 3, k, eb);
        for (size_t i = at; err == 0 && i < at + k; i++) {
            pg_array_int8(&c.col[0], v[i]->user_id);
            pg_array_int8(&c.col[1], v[i]->torrent_id);
            pg_array_int8(&c.col[2], v[i]->at);
        }
        if (err == 0) {
            /* The same arrays serve both statements. */
            struct pg_params p = {0};
            for (int j = 0; j < 3; j++) {
                pg_param_bytes(&p, c.col[j].buf, c.col[j].len);
            }
            err = pg_run(s, PG_ADD_SNATCHES, &p, NULL, eb);
            if (err == 0) {
                err = pg_run(s, PG_MARK_COMPLETED, &p, NULL, eb);
            }
            pg_columns_fini(&c);
        }
    }
    return err;
}

static int pg_write_suspicious(struct pg_store *s, const struct acct_delta **v, size_t n,
                               struct mk_errbuf *eb)
{
    static const enum pg_oid types[5] = {PG_OID_INT8, PG_OID_INT8, PG_OID_INT8, PG_OID_INT8,
                                         PG_OID_TEXT};
    static const char *const reasons[] = {"", "no_leechers", "too_fast", "unknown"};
    int err = 0;
    for (size_t at = 0; at < n && err == 0; at += PG_APPLY_CHUNK) {
        size_t k = pg_chunk(n, at);
        struct pg_columns c;
        err = pg_columns_init(&c, types, 5, k, eb);
        for (size_t i = at; err == 0 && i < at + k; i++) {
            const struct acct_delta *d = v[i];
            const char *reason = reasons[d->suspicious & 3];
            pg_array_int8(&c.col[0], d->user_id);
            pg_array_int8(&c.col[1], d->torrent_id);
            pg_array_int8(&c.col[2], d->at);
            pg_array_int8(&c.col[3], pg_clamp(d->suspicious_up, d->user_id));
            pg_array_bytes(&c.col[4], reason, strlen(reason));
        }
        if (err == 0) {
            err = pg_columns_run(s, PG_ADD_SUSPICIOUS, &c, NULL, eb);
        }
    }
    return err;
}

static int pg_write_peers(struct pg_store *s, const struct acct_delta **v, size_t n,
                          struct mk_errbuf *eb)
{
    enum { NCOLS = 14 };
    static const enum pg_oid types[NCOLS] = {
        PG_OID_INT8, PG_OID_INT8, PG_OID_BYTEA, PG_OID_INT8, PG_OID_BYTEA,
        PG_OID_INT8, PG_OID_INT8, PG_OID_INT8, PG_OID_BOOL, PG_OID_BOOL,
        PG_OID_INT8, PG_OID_INT8, PG_OID_BOOL, PG_OID_INT8};
    int err = 0;
    for (size_t at = 0; at < n && err == 0; at += PG_APPLY_CHUNK) {
        size_t k = pg_chunk(n, at);
        struct pg_columns c;
        err = pg_columns_init(&c, types, NCOLS, k, eb);
        for (size_t i = at; err == 0 && i < at + k; i++) {
            const struct acct_delta *d = v[i];
            const struct peer_row *pr = &d->peer;
            bool v6 = pr->family == 6;
            pg_array_int8(&c.col[0], d->torrent_id);
            pg_array_int8(&c.col[1], d->user_id);
            pg_array_bytes(&c.col[2], pr->peer_id, 20);
            pg_array_int8(&c.col[3], v6 ? 6 : 4);
            pg_array_bytes(&c.col[4], pr->ip, v6 ? 16 : 4);
            pg_array_int8(&c.col[5], pr->port);
            pg_array_int8(&c.col[6], pg_clamp(pr->uploaded, d->user_id));
            pg_array_int8(&c.col[7], pg_clamp(pr->downloaded, d->user_id));
            pg_array_bool(&c.col[8], pr->seeder);
            pg_array_bool(&c.col[9], pr->partial);
            pg_array_int8(&c.col[10], pr->last_seen);
            pg_array_int8(&c.col[11], pr->version);
            pg_array_bool(&c.col[12], pr->gone);
            pg_array_int8(&c.col[13], pr->node_id);
        }
        if (err == 0) {
            err = pg_columns_run(s, PG_PUT_PEERS, &c, NULL, eb);
        }
    }
    return err;
}

/* Which deltas carry each per-announce row. */
static bool pg_has_snatch(const struct acct_delta *d)
{
    return d->snatch;
}

static bool pg_has_suspicious(const struct acct_delta *d)
{
    return d->suspicious != 0;
}

static bool pg_has_peer(const struct acct_delta *d)
{
    return d->has_peer;
}

/* Points v[0..) at the rows that carry what `has` asks; answers how many. */
static size_t pg_pick(const struct acct_delta *rows, size_t n,
                      bool (*has)(const struct acct_delta *), const struct acct_delta **v)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (has(&rows[i])) {
            v[k++] = &rows[i];
        }
    }
    return k;
}

/* The per-announce rows of the kinds this store keeps. v has room for n
 * pointers. */
static int pg_write_events(struct pg_store *s, uint32_t kinds, const struct acct_delta *rows,
                           size_t n, const struct acct_delta **v, struct mk_errbuf *eb)
{
    int err = 0;
    /* Both users' and torrents' backends keep the snatch row: the counter
     * moves only when the row is new (store.h, kinds). */
    if (kinds & (STORE_KIND_USERS | STORE_KIND_TORRENTS)) {
        size_t k = pg_dedupe(v, pg_pick(rows, n, pg_has_snatch, v), pg_cmp_snatch, pg_same_snatch);
        err = pg_write_snatches(s, v, k, eb);
    }
    if (err == 0 && (kinds & STORE_KIND_USERS)) {
        /* Events, not state: every one is kept, in the batch's order. */
        err = pg_write_suspicious(s, v, pg_pick(rows, n, pg_has_suspicious, v), eb);
    }
    if (err == 0 && (kinds & STORE_KIND_PEERS)) {
        size_t k = pg_dedupe(v, pg_pick(rows, n, pg_has_peer, v), pg_cmp_peer, pg_same_peer);
        err = pg_write_peers(s, v, k, eb);
    }
    return err;
}

/* ---- one batch --------------------------------------------------------------
 *
 * PostgreSQL makes a new row version for every UPDATE; the same row updated
 * thousands of times in one transaction (a popular torrent's transferred
 * bytes, a busy user's totals) walks an ever longer chain of versions. So
 * the batch is first summed per row, and each row is written once. Sorting
 * by key also makes concurrent nodes take row locks in the same order, so
 * their batches wait for each other instead of deadlocking (store/sums.c);
 * a deadlock the planner's join order still makes is 40P01, MK_EUNAVAIL,
 * and the flusher retries. */

static int pg_write_batch(struct pg_store *s, uint32_t kinds, const struct acct_delta *rows,
                          size_t n, struct mk_errbuf *eb)
{
    struct store_sums m;
    if (sums_build(&m, rows, n) < 0) {
        return mk_fail(eb, MK_ENOMEM, "postgres: out of memory summing %zu deltas", n);
    }
    const struct acct_delta **v = calloc(n, sizeof(*v));
    if (!v) {
        sums_free(&m);
        return mk_fail(eb, MK_ENOMEM, "postgres: out of memory for a batch of %zu rows", n);
    }
    int err = 0;
    if (kinds & STORE_KIND_USERS) {
        err = pg_write_users(s, m.users, m.nusers, eb);
        if (err == 0) {
            err = pg_write_history(s, m.history, m.nhistory, eb);
        }
    }
    if (err == 0 && (kinds & STORE_KIND_TORRENTS)) {
        err = pg_write_transferred(s, m.torrents, m.ntorrents, eb);
    }
    if (err == 0) {
        err = pg_write_events(s, kinds, rows, n, v, eb);
    }
    free(v);
    sums_free(&m);
    return err;
}

/* Records ids[0..nids) in the open transaction; MK_EEXIST (eb not set) if
 * any was there already. */
static int pg_mark_segments(struct pg_store *s, const struct store_segment_id *ids, size_t nids,
                            size_t n, struct mk_errbuf *eb)
{
    static const enum pg_oid types[4] = {PG_OID_INT8, PG_OID_INT8, PG_OID_INT8, PG_OID_INT8};
    struct pg_columns c;
    int err = pg_columns_init(&c, types, 4, nids, eb);
    if (err < 0) {
        return err;
    }
    for (size_t i = 0; i < nids; i++) {
        /* boot and seq are stored as the BIGINT with the same bits. */
        pg_array_int8(&c.col[0], (int64_t)ids[i].boot);
        pg_array_int8(&c.col[1], ids[i].writer);
        pg_array_int8(&c.col[2], (int64_t)ids[i].seq);
        pg_array_int8(&c.col[3], (int64_t)(ids[i].records ? ids[i].records : nids == 1 ? n : 0));
    }
    long added = 0;
    err = pg_columns_run(s, PG_MARK_SEGMENTS, &c, &added, eb);
    return err == 0 && (size_t)added != nids ? MK_EEXIST : err;
}

/* The batch in one transaction; with ids, the nids segments are recorded in
 * the same transaction first, and if any was there already all is rolled
 * back untouched. */
static int pg_apply_run(struct pg_store *s, const struct store_segment_id *ids, size_t nids,
                        const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    int err = pg_begin(s, "BEGIN", eb);
    if (err < 0) {
        return err;
    }
    if (nids > 0) {
        err = pg_mark_segments(s, ids, nids, n, eb);
        if (err == MK_EEXIST) {
            pg_end(s, MK_EEXIST, eb);
            if (nids == 1) {
                return mk_fail(eb, MK_EEXIST,
                               "postgres: segment %" PRIu64 "/%" PRIu32 "/%" PRIu64
                               " was applied before",
                               ids[0].boot, ids[0].writer, ids[0].seq);
            }
            return mk_fail(eb, MK_EEXIST,
                           "postgres: a group of %zu segments holds one applied before", nids);
        }
    }
    if (err == 0 && n > 0) {
        err = pg_write_batch(s, nids && ids[0].kinds ? ids[0].kinds : STORE_KIND_ALL, rows, n, eb);
    }
    return pg_end(s, err, eb);
}

int pg_apply_rows(void *ctx, const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    return pg_apply_run(ctx, NULL, 0, rows, n, eb);
}

int pg_apply_segment(void *ctx, const struct store_segment_id *id, const struct acct_delta *rows,
                     size_t n, struct mk_errbuf *eb)
{
    return pg_apply_run(ctx, id, 1, rows, n, eb);
}

int pg_apply_segments(void *ctx, const struct store_segment_id *ids, size_t nids,
                      const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    return pg_apply_run(ctx, ids, nids, rows, n, eb);
}
