/* store/pg.c: the "postgres" store backend (libpq).
 *
 * Owns: one connection per open store (dropped on loss, made again by the
 * next call), its prepared statements, the schema (versioned in the table
 * mika_schema, migrated at open under an advisory lock so nodes starting
 * together do not race), the default whitelist seeded into a new database,
 * the ops table.
 * Not here: statement parameters and result values (pg_value.c), the
 * streaming loaders and pruning (pg_load.c), the books (apply
 * and the segments: pg_apply.c), the admin API's
 * methods (pg_admin.c), clusters (pg_notify.c), retrying an unavailable
 * store (acct/flusher.c), choosing the backend (store/store.c).
 * Invariants: the tables mirror the sqlite backend's (docs/STORES.md lists
 * both; keep the three in step); rows that break the store.h contract are
 * skipped with a warning, never passed on; a lost connection answers
 * MK_EUNAVAIL, never blocks for long (connect and TCP timeouts, a 100 ms
 * lock_timeout) and is reopened by the next call.
 *
 * Sections: errors, connection and statements, schema.
 */
#include "store/pg_admin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define PG_SCHEMA_VERSION 5
/* Prepared statements per connection; past it, statements run unprepared. */
#define PG_STMTS_MAX 64
/* pg_advisory_xact_lock(PG_LOCK_CLASS, hashtext(current_schema())):
 * "mika" in ASCII; one migration at a time per schema. */
#define PG_LOCK_CLASS 1835625313

struct pg_stmt {
    const char *sql; /* a string literal: its address is the key */
    char name[8];
};

struct pg_store {
    PGconn *conn;     /* NULL: connect at the next call */
    char *dsn;
    bool in_tx;       /* between pg_begin and pg_end: never reconnect silently */
    bool was_up;      /* connected before: the next connect is a reconnect */
    bool listening;   /* LISTEN sent on this connection (store/pg_notify.c) */
    int nstmts;
    struct pg_stmt stmts[PG_STMTS_MAX];
};

/* ---- errors -------------------------------------------------------------- */

/* Unique constraints (named in the schema) and the column each guards: the
 * admin API tells its client which value is taken. */
static const struct {
    const char *constraint;
    const char *column;
} pg_unique_columns[] = {
    {"users_pkey", "id"},         {"users_passkey", "passkey"},
    {"users_name", "name"},       {"torrents_pkey", "id"},
    {"torrents_info_hash", "info_hash"}, {"whitelist_pkey", "prefix"},
    {"classes_pkey", "id"},       {"classes_name", "name"},
    {"settings_pkey", "key"},
};

/* SQLSTATEs that mean "try again later": connection exceptions (08), the
 * server shutting down or starting (57P), out of resources (53), lock or
 * serialization conflicts, a cancelled statement. */
static bool pg_state_is_transient(const char *st)
{
    return strncmp(st, "08", 2) == 0 || strncmp(st, "57P", 3) == 0 || strncmp(st, "53", 2) == 0 ||
           strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0 || strcmp(st, "55P03") == 0 ||
           strcmp(st, "57014") == 0;
}

/* The last line of a libpq message, without its newline. */
static void pg_msg(char *out, size_t cap, const char *msg)
{
    snprintf(out, cap, "%s", msg && *msg ? msg : "unknown error");
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' ')) {
        out[--n] = '\0';
    }
}

static void pg_drop(struct pg_store *s)
{
    if (s->conn) {
        PQfinish(s->conn);
        s->conn = NULL;
    }
    s->nstmts = 0;
    s->listening = false;
}

/* The mk_err for a failed result (NULL: the connection's own error); drops
 * a connection that is gone, so the next call makes a new one. */
static int pg_fail(struct pg_store *s, const PGresult *r, struct mk_errbuf *eb, const char *what)
{
    char msg[200];
    pg_msg(msg, sizeof(msg), r ? PQresultErrorMessage(r) : s->conn ? PQerrorMessage(s->conn) : "");
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (!s->conn || PQstatus(s->conn) == CONNECTION_BAD) {
        pg_drop(s);
        return mk_fail(eb, MK_EUNAVAIL, "postgres: %s: connection lost: %s", what, msg);
    }
    if (state && strcmp(state, "23505") == 0) {
        const char *c = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
        for (size_t i = 0; c && i < sizeof(pg_unique_columns) / sizeof(pg_unique_columns[0]); i++) {
            if (strcmp(c, pg_unique_columns[i].constraint) == 0) {
                return mk_fail(eb, MK_EEXIST, "%s", pg_unique_columns[i].column);
            }
        }
        return mk_fail(eb, MK_EEXIST, "%s", c ? c : "unique");
    }
    int err = state && pg_state_is_transient(state) ? MK_EUNAVAIL
              : state && strcmp(state, "23514") == 0 ? MK_EINVAL
                                                      : MK_EIO;
    return mk_fail(eb, err, "postgres: %s: %s", what, msg);
}

/* ---- connection and statements ------------------------------------------ */

/* Server notices ("relation already exists, skipping") go to the log at
 * debug level, not to stderr as libpq would print them. */
static void pg_notice(void *arg, const char *message)
{
    char msg[200];
    pg_msg(msg, sizeof(msg), message);
    mk_log(MK_LOG_DEBUG, "store.pg", "server: %s", msg);
}

static int pg_connect(struct pg_store *s, struct mk_errbuf *eb)
{
    /* Defaults first, so the DSN may change them; the encoding after, so it
     * cannot: every string crossing the store boundary is UTF-8. The
     * timeouts bound how long a dead server can hold a call. */
    const char *const kw[] = {"connect_timeout", "keepalives_idle", "keepalives_interval",
                              "keepalives_count", "tcp_user_timeout", "application_name",
                              "dbname", "client_encoding", NULL};
    const char *const val[] = {"3", "15", "5", "3", "15000", "mika", s->dsn, "UTF8", NULL};
    PGconn *c = PQconnectdbParams(kw, val, 1);
    if (!c) {
        return mk_fail(eb, MK_ENOMEM, "postgres: out of memory");
    }
    char msg[200];
    if (PQstatus(c) != CONNECTION_OK) {
        pg_msg(msg, sizeof(msg), PQerrorMessage(c));
        PQfinish(c);
        return mk_fail(eb, MK_EUNAVAIL, "postgres: connect: %s", msg);
    }
    if (PQserverVersion(c) < 110000) {
        int v = PQserverVersion(c);
        PQfinish(c);
        return mk_fail(eb, MK_ENOTSUP, "postgres: server version %d.%d, need 11 or newer",
                       v / 10000, v % 10000);
    }
    PQsetNoticeProcessor(c, pg_notice, NULL);
    /* The flusher keeps a batch that meets a lock and retries it: waiting
     * longer here would only stall it (and the same for the admin API). */
    PGresult *r = PQexec(c, "SET lock_timeout = '100ms'");
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    pg_msg(msg, sizeof(msg), PQresultErrorMessage(r));
    PQclear(r);
    if (!ok) {
        PQfinish(c);
        return mk_fail(eb, MK_EUNAVAIL, "postgres: connect: %s", msg);
    }
    s->conn = c;
    s->nstmts = 0;
    if (s->was_up) {
        mk_log(MK_LOG_INFO, "store.pg", "reconnected to %s:%s", PQhost(c), PQport(c));
    }
    s->was_up = true;
    return 0;
}

/* Runs a statement without parameters (BEGIN, COMMIT, DDL). */
static int pg_simple(struct pg_store *s, const char *sql, struct mk_errbuf *eb);
static int pg_ready(struct pg_store *s, struct mk_errbuf *eb);

int pg_exec(struct pg_store *s, const char *sql, struct mk_errbuf *eb)
{
    int err = pg_ready(s, eb);
    return err < 0 ? err : pg_simple(s, sql, eb);
}

PGconn *pg_conn(struct pg_store *s)
{
    return s->conn;
}

void pg_disconnect(struct pg_store *s)
{
    pg_drop(s);
}

bool *pg_listening(struct pg_store *s)
{
    return &s->listening;
}

static int pg_simple(struct pg_store *s, const char *sql, struct mk_errbuf *eb)
{
    if (!s->conn) {
        return mk_fail(eb, MK_EUNAVAIL, "postgres: not connected");
    }
    PGresult *r = PQexec(s->conn, sql);
    ExecStatusType st = PQresultStatus(r);
    int err = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : pg_fail(s, r, eb, sql);
    PQclear(r);
    return err;
}

/* Makes sure a healthy connection is idle outside any transaction. */
static int pg_ready(struct pg_store *s, struct mk_errbuf *eb)
{
    if (s->conn && PQstatus(s->conn) == CONNECTION_OK &&
        PQpipelineStatus(s->conn) == PQ_PIPELINE_OFF) {
        PGTransactionStatusType ts = PQtransactionStatus(s->conn);
        if (ts == PQTRANS_IDLE) {
            return 0;
        }
        /* Left behind by a failed call: undo it rather than reconnect. */
        if ((ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) && pg_simple(s, "ROLLBACK", eb) == 0) {
            return 0;
        }
    }
    if (s->conn) {
        mk_log(MK_LOG_WARN, "store.pg", "dropping a connection in a bad state");
    }
    pg_drop(s);
    return pg_connect(s, eb);
}

/* The name of sql's prepared statement on this connection, preparing it the
 * first time; NULL when the cache is full (run it unprepared). */
static const char *pg_prepared(struct pg_store *s, const char *sql, int *err,
                               struct mk_errbuf *eb)
{
    *err = 0;
    for (int i = 0; i < s->nstmts; i++) {
        if (s->stmts[i].sql == sql) {
            return s->stmts[i].name;
        }
    }
    if (s->nstmts == PG_STMTS_MAX) {
        return NULL;
    }
    struct pg_stmt *st = &s->stmts[s->nstmts];
    snprintf(st->name, sizeof(st->name), "mk%d", s->nstmts);
    PGresult *r = PQprepare(s->conn, st->name, sql, 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        *err = pg_fail(s, r, eb, "prepare");
        PQclear(r);
        return NULL;
    }
    PQclear(r);
    st->sql = sql;
    s->nstmts++;
    return st->name;
}

/* Connects if needed, unless inside a transaction: a transaction does not
 * survive its connection, so that is an error for its owner to undo. */
static int pg_usable(struct pg_store *s, struct mk_errbuf *eb)
{
    if (s->in_tx) {
        return s->conn ? 0 : mk_fail(eb, MK_EUNAVAIL, "postgres: connection lost");
    }
    return pg_ready(s, eb);
}

int pg_run(struct pg_store *s, const char *sql, const struct pg_params *p, PGresult **out,
           struct mk_errbuf *eb)
{
    static const struct pg_params none;
    p = p ? p : &none;
    int err = pg_usable(s, eb);
    if (err < 0) {
        return err;
    }
    const char *name = pg_prepared(s, sql, &err, eb);
    if (err < 0) {
        return err;
    }
    PGresult *r = name ? PQexecPrepared(s->conn, name, p->n, p->val, p->len, p->fmt, 1)
                       : PQexecParams(s->conn, sql, p->n, NULL, p->val, p->len, p->fmt, 1);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        err = pg_fail(s, r, eb, "query");
        PQclear(r);
        return err;
    }
    if (out) {
        *out = r;
    } else {
        PQclear(r);
    }
    return 0;
}

int pg_run_count(struct pg_store *s, const char *sql, const struct pg_params *p, long *rows,
                 struct mk_errbuf *eb)
{
    PGresult *r = NULL;
    int err = pg_run(s, sql, p, &r, eb);
    if (err == 0) {
        *rows = strtol(PQcmdTuples(r), NULL, 10);
        PQclear(r);
    }
    return err;
}

int pg_begin(struct pg_store *s, const char *begin_sql, struct mk_errbuf *eb)
{
    int err = pg_ready(s, eb);
    if (err == 0) {
        err = pg_simple(s, begin_sql, eb);
    }
    s->in_tx = err == 0;
    return err;
}

int pg_end(struct pg_store *s, int err, struct mk_errbuf *eb)
{
    s->in_tx = false;
    if (err == 0) {
        err = pg_simple(s, "COMMIT", eb);
    }
    if (err != 0 && s->conn) {
        /* Fails harmlessly when there is nothing to undo; a connection that
         * cannot even roll back is dropped by pg_simple. */
        struct mk_errbuf ignored;
        pg_simple(s, "ROLLBACK", &ignored);
    }
    return err;
}

int pg_stream(struct pg_store *s, const char *sql, const struct pg_params *p, const char *what,
              pg_row_fn fn, void *arg, struct mk_errbuf *eb)
{
    static const struct pg_params none;
    p = p ? p : &none;
    int err = pg_usable(s, eb);
    if (err < 0) {
        return err;
    }
    const char *name = pg_prepared(s, sql, &err, eb);
    if (err < 0) {
        return err;
    }
    int sent = name ? PQsendQueryPrepared(s->conn, name, p->n, p->val, p->len, p->fmt, 1)
                    : PQsendQueryParams(s->conn, sql, p->n, NULL, p->val, p->len, p->fmt, 1);
    if (!sent) {
        return pg_fail(s, NULL, eb, what);
    }
    PQsetSingleRowMode(s->conn);
    /* After the caller stops, the rest is read and dropped: a cancel request
     * could land on the next statement instead of this one. */
    PGresult *failed = NULL;
    int stop = 0;
    PGresult *r;
    while ((r = PQgetResult(s->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE && stop == 0 && !failed) {
            stop = fn(r, arg);
            stop = stop > 0 ? 0 : stop;
        } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && !failed) {
            failed = r;
            continue;
        }
        PQclear(r);
    }
    if (failed) {
        err = pg_fail(s, failed, eb, what);
        PQclear(failed);
    } else if (stop < 0) {
        err = mk_fail(eb, stop, "postgres: loading %s stopped by the caller", what);
    }
    return err;
}

/* ---- schema --------------------------------------------------------------- */

/* Migration i takes the schema from version i to i + 1; only ever append.
 * Version 2 is the sqlite backend's schema 3 with user_torrents and suspicious, in
 * PostgreSQL's types: BIGINT counters, BYTEA hashes, BOOLEAN flags. */
static const char *const pg_migrations[PG_SCHEMA_VERSION] = {
    "CREATE TABLE classes ("
    " id BIGINT GENERATED BY DEFAULT AS IDENTITY CONSTRAINT classes_pkey PRIMARY KEY,"
    " name TEXT NOT NULL CONSTRAINT classes_name UNIQUE,"
    " upload_multiplier BIGINT NOT NULL DEFAULT 1000,"
    " download_multiplier BIGINT NOT NULL DEFAULT 1000,"
    " may_download BOOLEAN NOT NULL DEFAULT TRUE);"
    "INSERT INTO classes (id, name) VALUES (1, 'user');"
    "CREATE TABLE users ("
    " id BIGINT GENERATED BY DEFAULT AS IDENTITY CONSTRAINT users_pkey PRIMARY KEY,"
    " passkey TEXT NOT NULL CONSTRAINT users_passkey UNIQUE,"
    " name TEXT CONSTRAINT users_name UNIQUE,"
    " enabled BOOLEAN NOT NULL DEFAULT TRUE,"
    " can_download BOOLEAN NOT NULL DEFAULT TRUE,"
    " class_id BIGINT NOT NULL DEFAULT 1,"
    " upload_multiplier BIGINT NOT NULL DEFAULT 1000,"
    " download_multiplier BIGINT NOT NULL DEFAULT 1000,"
    " uploaded BIGINT NOT NULL DEFAULT 0,"
    " downloaded BIGINT NOT NULL DEFAULT 0,"
    " raw_uploaded BIGINT NOT NULL DEFAULT 0,"
    " raw_downloaded BIGINT NOT NULL DEFAULT 0,"
    " seed_time BIGINT NOT NULL DEFAULT 0,"
    " leech_time BIGINT NOT NULL DEFAULT 0,"
    " bonus BIGINT NOT NULL DEFAULT 0,"
    " announces BIGINT NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL DEFAULT (extract(epoch FROM now())::bigint));"
    "CREATE INDEX users_class ON users (class_id);"
    "CREATE TABLE torrents ("
    " id BIGINT GENERATED BY DEFAULT AS IDENTITY CONSTRAINT torrents_pkey PRIMARY KEY,"
    " info_hash BYTEA NOT NULL CONSTRAINT torrents_info_hash UNIQUE"
    "  CHECK (octet_length(info_hash) = 20),"
    " enabled BOOLEAN NOT NULL DEFAULT TRUE,"
    " deleted BOOLEAN NOT NULL DEFAULT FALSE,"
    " deleted_reason TEXT NOT NULL DEFAULT '',"
    " snatches BIGINT NOT NULL DEFAULT 0,"
    " name TEXT,"
    " size BIGINT,"
    " freeleech BOOLEAN NOT NULL DEFAULT FALSE,"
    " upload_multiplier BIGINT NOT NULL DEFAULT 1000,"
    " download_multiplier BIGINT NOT NULL DEFAULT 1000,"
    " transferred BIGINT NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL DEFAULT (extract(epoch FROM now())::bigint));"
    "CREATE TABLE whitelist ("
    " prefix BYTEA CONSTRAINT whitelist_pkey PRIMARY KEY,"
    " name TEXT NOT NULL);"
    "CREATE TABLE snatches ("
    " user_id BIGINT NOT NULL,"
    " torrent_id BIGINT NOT NULL,"
    " at BIGINT NOT NULL,"
    " PRIMARY KEY (user_id, torrent_id));"
    "CREATE INDEX snatches_torrent ON snatches (torrent_id);"
    "CREATE TABLE user_torrents ("
    " user_id BIGINT NOT NULL,"
    " torrent_id BIGINT NOT NULL,"
    " uploaded BIGINT NOT NULL DEFAULT 0,"
    " downloaded BIGINT NOT NULL DEFAULT 0,"
    " raw_uploaded BIGINT NOT NULL DEFAULT 0,"
    " raw_downloaded BIGINT NOT NULL DEFAULT 0,"
    " seed_time BIGINT NOT NULL DEFAULT 0,"
    " leech_time BIGINT NOT NULL DEFAULT 0,"
    " announces BIGINT NOT NULL DEFAULT 0,"
    " first_announce BIGINT NOT NULL,"
    " last_announce BIGINT NOT NULL,"
    " completed_at BIGINT,"
    " PRIMARY KEY (user_id, torrent_id));"
    "CREATE INDEX user_torrents_torrent ON user_torrents (torrent_id);"
    /* boot and seq are unsigned 64-bit in the journal: stored as the
     * BIGINT with the same bits. */
    "CREATE TABLE journal_applied ("
    " boot BIGINT NOT NULL,"
    " writer BIGINT NOT NULL,"
    " seq BIGINT NOT NULL,"
    " records BIGINT NOT NULL,"
    " applied_at BIGINT NOT NULL DEFAULT (extract(epoch FROM now())::bigint),"
    " PRIMARY KEY (boot, writer, seq));"
    "CREATE TABLE settings ("
    " key TEXT CONSTRAINT settings_pkey PRIMARY KEY,"
    " value TEXT NOT NULL);"
    "CREATE TABLE peers ("
    " torrent_id BIGINT NOT NULL,"
    " user_id BIGINT NOT NULL,"
    " peer_id BYTEA NOT NULL CHECK (octet_length(peer_id) = 20),"
    " family SMALLINT NOT NULL CHECK (family IN (4, 6)),"
    " ip BYTEA NOT NULL,"
    " port INTEGER NOT NULL,"
    " uploaded BIGINT NOT NULL,"
    " downloaded BIGINT NOT NULL,"
    " seeder BOOLEAN NOT NULL,"
    " partial BOOLEAN NOT NULL,"
    " last_seen BIGINT NOT NULL,"
    " version BIGINT NOT NULL,"
    " gone BOOLEAN NOT NULL,"
    " PRIMARY KEY (torrent_id, user_id, peer_id));"
    "CREATE INDEX peers_last_seen ON peers (last_seen);",
    /* v2: uploads not credited because they were too good to be true. */
    "CREATE TABLE suspicious ("
    " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " user_id BIGINT NOT NULL,"
    " torrent_id BIGINT NOT NULL,"
    " at BIGINT NOT NULL,"
    " uploaded BIGINT NOT NULL,"
    " reason TEXT NOT NULL);"
    "CREATE INDEX suspicious_user ON suspicious (user_id, at);",
    /* v3: clusters (store/pg_notify.c): each node's swarm counts, and when
     * each node last published them (milliseconds of the server's clock). */
    "CREATE TABLE cluster_nodes ("
    " node_id INTEGER CONSTRAINT cluster_nodes_pkey PRIMARY KEY,"
    " seen_at BIGINT NOT NULL);"
    "CREATE TABLE swarm_counts ("
    " node_id INTEGER NOT NULL,"
    " info_hash BYTEA NOT NULL CHECK (octet_length(info_hash) = 20),"
    " seeders BIGINT NOT NULL,"
    " leechers BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL DEFAULT (extract(epoch FROM now())::bigint),"
    " PRIMARY KEY (node_id, info_hash));",
    /* v4: with each swarm's counts, the node's snatch count of the torrent
     * and the unix time of the swarm's last announce there: the node that
     * saw the latest answers (cluster/counts.c). With each peer, the
     * cluster node that answered its report (0: none), so that a node
     * restores only the baselines it wrote itself (serve.c). */
    "ALTER TABLE swarm_counts"
    " ADD COLUMN snatches BIGINT NOT NULL DEFAULT 0,"
    " ADD COLUMN announced_at BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE peers ADD COLUMN node_id INTEGER NOT NULL DEFAULT 0;",
    /* v5: room for heap-only updates. Each announce rewrites a users, a
     * user_torrents and a peers row (pg_apply.c). When the row's page has
     * free space and no indexed column changes, PostgreSQL puts the new
     * version beside the old and touches no index; on a full page (the
     * default fillfactor 100) it inserts into every index of the table
     * (four for users). fillfactor keeps that room in pages written from
     * now on. peers.last_seen changed with every report, so its index made
     * every peer update touch two indexes, for the prune once a minute and
     * the load at start-up, which scan most of the table anyway (the sqlite
     * backend dropped the same index in its schema version 4). */
    "ALTER TABLE users SET (fillfactor = 70);"
    "ALTER TABLE user_torrents SET (fillfactor = 70);"
    "ALTER TABLE torrents SET (fillfactor = 70);"
    "ALTER TABLE peers SET (fillfactor = 70);"
    "DROP INDEX IF EXISTS peers_last_seen;",
};

static int pg_seed_whitelist(struct pg_store *s, struct mk_errbuf *eb)
{
    int err = 0;
    size_t n = store_default_whitelist_len;
    for (size_t i = 0; i < n && err == 0; i++) {
        struct pg_params p = {0};
        const struct store_client_prefix *c = &store_default_whitelist[i];
        pg_param_bytes(&p, c->prefix, strlen(c->prefix));
        pg_param_text(&p, c->name);
        err = pg_run(s, "INSERT INTO whitelist (prefix, name) VALUES ($1, $2)", &p, NULL, eb);
    }
    return err;
}

/* Brings the schema to PG_SCHEMA_VERSION in one transaction under an
 * advisory lock: a second node starting at the same time waits, then finds
 * the work done; a crash half-way leaves the old schema whole. */
static int pg_migrate(struct pg_store *s, struct mk_errbuf *eb)
{
    int err = pg_begin(s, "BEGIN", eb);
    if (err < 0) {
        return err;
    }
    /* Another node's migration may hold the lock for longer than the
     * session's 100 ms. */
    err = pg_simple(s, "SET LOCAL lock_timeout = '60s'", eb);
    if (err == 0) {
        char sql[128];
        snprintf(sql, sizeof(sql),
                 "SELECT pg_advisory_xact_lock(%d, hashtext(COALESCE(current_schema(), '')))",
                 PG_LOCK_CLASS);
        err = pg_simple(s, sql, eb);
    }
    if (err == 0) {
        err = pg_simple(s, "CREATE TABLE IF NOT EXISTS mika_schema (version INTEGER NOT NULL)", eb);
    }
    PGresult *r = NULL;
    if (err == 0) {
        err = pg_run(s, "SELECT version FROM mika_schema", NULL, &r, eb);
    }
    int64_t version = 0;
    if (err == 0) {
        version = PQntuples(r) > 0 ? pg_int(r, 0, 0) : 0;
        PQclear(r);
        if (version < 0 || version > PG_SCHEMA_VERSION) {
            err = mk_fail(eb, MK_ENOTSUP,
                          "postgres: schema version %" PRId64 " is not one this mika knows (0..%d)",
                          version, PG_SCHEMA_VERSION);
        }
    }
    for (int64_t v = version; err == 0 && v < PG_SCHEMA_VERSION; v++) {
        err = pg_simple(s, pg_migrations[v], eb);
        if (err == 0 && v == 0) {
            err = pg_seed_whitelist(s, eb);
        }
        if (err == 0) {
            mk_log(MK_LOG_INFO, "store.pg", "schema migrated to version %" PRId64, v + 1);
        }
    }
    if (err == 0 && version < PG_SCHEMA_VERSION) {
        struct pg_params p = {0};
        pg_param_int(&p, PG_SCHEMA_VERSION);
        err = pg_run(s, "DELETE FROM mika_schema", NULL, NULL, eb);
        if (err == 0) {
            err = pg_run(s, "INSERT INTO mika_schema (version) VALUES ($1)", &p, NULL, eb);
        }
    }
    return pg_end(s, err, eb);
}

static void pg_close(void *ctx)
{
    struct pg_store *s = ctx;
    if (!s) {
        return;
    }
    pg_drop(s);
    free(s->dsn);
    free(s);
}

static int pg_open(void **ctx, const struct store_cfg *cfg, struct mk_errbuf *eb)
{
    if (!cfg || !cfg->dsn || !*cfg->dsn) {
        return mk_fail(eb, MK_EINVAL, "postgres: no dsn");
    }
    struct pg_store *s = calloc(1, sizeof(*s));
    if (!s || !(s->dsn = strdup(cfg->dsn))) {
        free(s);
        return mk_fail(eb, MK_ENOMEM, "postgres: out of memory");
    }
    int err = pg_connect(s, eb);
    if (err == 0) {
        err = pg_migrate(s, eb);
    }
    if (err < 0) {
        pg_close(s);
        return err;
    }
    *ctx = s;
    return 0;
}

const struct store_ops store_pg_ops = {
    .version = MK_STORE_V6,
    .name = "postgres",
    .open = pg_open,
    .close = pg_close,
    .load_users = pg_load_users,
    .load_torrents = pg_load_torrents,
    .load_whitelist = pg_load_whitelist,
    .load_snatches = pg_load_snatches,
    .apply = pg_apply_rows,
    .apply_segment = pg_apply_segment,
    .ping = pg_admin_ping,
    .user_get = pg_admin_user_get,
    .user_get_by_passkey = pg_admin_user_get_by_passkey,
    .user_list = pg_admin_user_list,
    .user_insert = pg_admin_user_insert,
    .user_update = pg_admin_user_update,
    .user_delete = pg_admin_user_delete,
    .torrent_get = pg_admin_torrent_get,
    .torrent_insert = pg_admin_torrent_insert,
    .torrent_update = pg_admin_torrent_update,
    .whitelist_insert = pg_admin_whitelist_insert,
    .whitelist_delete = pg_admin_whitelist_delete,
    .class_list = pg_admin_class_list,
    .class_get = pg_admin_class_get,
    .class_insert = pg_admin_class_insert,
    .class_update = pg_admin_class_update,
    .class_delete = pg_admin_class_delete,
    .settings_load = pg_admin_settings_load,
    .settings_put = pg_admin_settings_put,
    .load_peers = pg_load_peers,
    .prune_peers = pg_prune_peers,
    .prune_applied = pg_prune_applied,
    .user_history = pg_user_history,
    .user_suspicious = pg_user_suspicious,
    .publish_change = pg_notify_publish,
    .listen_changes = pg_notify_listen,
    .counts_put = pg_notify_counts_put,
    .counts_load = pg_notify_counts_load,
    .apply_segments = pg_apply_segments,
};
