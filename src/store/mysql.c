/* store/mysql.c: the "mysql" store backend (libmariadb; MySQL 5.7+, MariaDB 10.1+).
 *
 * Owns: one connection per open store (dropped on loss, made again by the
 * next call), running and streaming statements with error mapping (the
 * runners declared in mysql_admin.h), the schema (versioned in the table
 * mika_schema, migrated at open under GET_LOCK so nodes starting together
 * do not race), the default whitelist seeded into a new database, and the
 * ops table.
 * Not here: the statement builder, row readers and dsn parsing
 * (mysql_sql.c), the loaders (mysql_load.c), apply() (mysql_apply.c), the
 * admin API's methods and tokens (mysql_admin.c), retrying an unavailable
 * store (acct/flusher.c), choosing the backend (store/store.c).
 * Invariants: the tables mirror the sqlite and postgres backends' (docs/
 * STORES.md lists them; keep them in step); rows that break the store.h
 * contract are skipped with a warning, never passed on; a batch is one
 * transaction and leaves nothing behind when it fails; a lost connection
 * answers MK_EUNAVAIL, never blocks for long (connect, read and write
 * timeouts; a 1 s innodb_lock_wait_timeout) and is reopened by the next
 * call; SQL runs on MySQL 5.7 (no CTEs, window functions or RETURNING;
 * table value constructors only where my_has_values says so).
 *
 * Sections: connection and errors, running and streaming, schema, ops.
 */
#include "store/mysql_admin.h"

#include <inttypes.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <errmsg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define MY_SCHEMA_VERSION 2
/* Seconds. A read or write that takes longer means the server or the
 * network is gone: the call answers MK_EUNAVAIL and the flusher retries. */
#define MY_CONNECT_TIMEOUT 3
#define MY_IO_TIMEOUT 5
/* The migration's connection waits for another node's migration (GET_LOCK)
 * and runs DDL that may take a while on a big table. */
#define MY_MIGRATE_LOCK_WAIT 60
#define MY_MIGRATE_IO_TIMEOUT 120
/* Prepared statements per connection: the few run once per row. */
#define MY_STMTS_MAX 4

struct my_stmt {
    const char *sql; /* a string literal: its address is the key */
    MYSQL_STMT *st;
};

struct my_store {
    MYSQL *conn;  /* NULL: connect at the next call */
    struct my_dsn dsn;
    bool in_tx;   /* between my_begin and my_end: never reconnect silently */
    bool was_up;  /* connected before: the next connect is a reconnect */
    bool streaming; /* inside my_stream: the connection is reading rows */
    bool values;  /* the server takes VALUES (...), (...) as a table (my_has_values) */
    int nstmts;   /* prepared on conn; they die with it */
    struct my_stmt stmts[MY_STMTS_MAX];
};

/* ---- connection and errors -------------------------------------------------- */

static void my_drop(struct my_store *s)
{
    for (int i = 0; i < s->nstmts; i++) {
        mysql_stmt_close(s->stmts[i].st);
    }
    s->nstmts = 0;
    if (s->conn) {
        mysql_close(s->conn);
        s->conn = NULL;
    }
}

static bool my_errno_is_lost(unsigned e)
{
    return e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST || e == CR_CONNECTION_ERROR ||
           e == CR_CONN_HOST_ERROR || e == CR_SERVER_LOST_EXTENDED ||
           e == 1927 /* ER_CONNECTION_KILLED (MariaDB) */ || e == ER_SERVER_SHUTDOWN ||
           e == 4031 /* ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8) */ || e == CR_COMMANDS_OUT_OF_SYNC;
}

/* Errors that mean "try again later": a lock wait or a deadlock (the
 * statement or transaction was undone), too many connections, a statement
 * killed by an operator. */
static bool my_errno_is_transient(unsigned e)
{
    return e == ER_LOCK_WAIT_TIMEOUT || e == ER_LOCK_DEADLOCK || e == ER_CON_COUNT_ERROR ||
           e == ER_TOO_MANY_USER_CONNECTIONS || e == ER_QUERY_INTERRUPTED ||
           e == 3024 /* ER_QUERY_TIMEOUT (MySQL) */ || e == 1969 /* ER_STATEMENT_TIMEOUT */;
}

/* Unique keys (named in the schema) and the column each guards: the admin
 * API tells its client which value is taken. PRIMARY is the id, except in
 * the whitelist (mysql_admin.c renames it there). */
static const struct {
    const char *key;
    const char *column;
} my_unique_columns[] = {
    {"PRIMARY", "id"},           {"users_passkey", "passkey"}, {"users_name", "name"},
    {"torrents_info_hash", "info_hash"}, {"classes_name", "name"},
};

/* The key of "Duplicate entry '...' for key 'k'" (MySQL 8 writes 'table.k');
 * the last "for key '" is the server's, whatever the entry held. */
static const char *my_dup_column(const char *msg)
{
    const char *k = NULL;
    for (const char *p = msg; (p = strstr(p, "for key '")) != NULL; p++) {
        k = p + 9;
    }
    if (!k) {
        return "unique";
    }
    const char *end = strchr(k, '\'');
    size_t len = end ? (size_t)(end - k) : strlen(k);
    const char *dot = memchr(k, '.', len);
    if (dot) {
        len -= (size_t)(dot + 1 - k);
        k = dot + 1;
    }
    for (size_t i = 0; i < sizeof(my_unique_columns) / sizeof(my_unique_columns[0]); i++) {
        if (strlen(my_unique_columns[i].key) == len &&
            strncmp(k, my_unique_columns[i].key, len) == 0) {
            return my_unique_columns[i].column;
        }
    }
    return "unique";
}

/* The mk_err for error e (message msg) of a call on s; drops a connection
 * that is gone, so the next call makes a new one. */
static int my_fail_with(struct my_store *s, unsigned e, const char *msg, const char *what,
                        struct mk_errbuf *eb)
{
    if (!s->conn || my_errno_is_lost(e)) {
        my_drop(s);
        return mk_fail(eb, MK_EUNAVAIL, "mysql: %s: connection lost: %s", what, msg);
    }
    if (e == ER_DUP_ENTRY || e == ER_DUP_KEY) {
        return mk_fail(eb, MK_EEXIST, "%s", my_dup_column(msg));
    }
    int err = my_errno_is_transient(e)                   ? MK_EUNAVAIL
              : e == 3819 || e == 4025 /* CHECK failed */ ? MK_EINVAL
                                                          : MK_EIO;
    return mk_fail(eb, err, "mysql: %s: %s", what, msg);
}

static int my_fail(struct my_store *s, const char *what, struct mk_errbuf *eb)
{
    char msg[MYSQL_ERRMSG_SIZE];
    unsigned e = s->conn ? mysql_errno(s->conn) : CR_SERVER_GONE_ERROR;
    snprintf(msg, sizeof(msg), "%s", s->conn ? mysql_error(s->conn) : "not connected");
    return my_fail_with(s, e, msg, what, eb);
}

/* Connects with io_timeout seconds for each read and write, sets the
 * session up and checks the server's version. */
static int my_connect(struct my_store *s, unsigned io_timeout, struct mk_errbuf *eb)
{
    MYSQL *c = mysql_init(NULL);
    if (!c) {
        return mk_fail(eb, MK_ENOMEM, "mysql: out of memory");
    }
    unsigned ct = MY_CONNECT_TIMEOUT;
    my_bool no = 0;
    mysql_options(c, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
    mysql_options(c, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
    mysql_options(c, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
    /* A silent reconnect would lose the session settings and, inside a
     * transaction, half of a batch: reconnecting is this file's job. */
    mysql_options(c, MYSQL_OPT_RECONNECT, &no);
    mysql_options(c, MYSQL_OPT_LOCAL_INFILE, &(unsigned){0});
    mysql_options(c, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_options4(c, MYSQL_OPT_CONNECT_ATTR_ADD, "program_name", "mika");
    char msg[MYSQL_ERRMSG_SIZE];
    if (!mysql_real_connect(c, s->dsn.host, s->dsn.user, s->dsn.pass, s->dsn.db, s->dsn.port,
                            NULL, 0)) {
        snprintf(msg, sizeof(msg), "%s", mysql_error(c));
        mysql_close(c);
        return mk_fail(eb, MK_EUNAVAIL, "mysql: connect: %s", msg);
    }
    unsigned long v = mysql_get_server_version(c);
    bool maria = strstr(mysql_get_server_info(c), "MariaDB") != NULL;
    if (v < (maria ? 100100ul : 50700ul)) {
        mysql_close(c);
        return mk_fail(eb, MK_ENOTSUP, "mysql: server version %lu.%lu, need %s", v / 10000,
                       v / 100 % 100, maria ? "MariaDB 10.1 or newer" : "MySQL 5.7 or newer");
    }
    /* Strict: a value that does not fit is an error, never cut. The flusher
     * keeps a batch that meets a lock and retries it, so waiting longer than
     * a second would only stall it (and the same for the admin API). */
    char sql[320];
    unsigned wait = io_timeout > MY_IO_TIMEOUT ? MY_MIGRATE_LOCK_WAIT : 1;
    snprintf(sql, sizeof(sql),
             "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION',"
             " time_zone = '+00:00', innodb_lock_wait_timeout = %u, lock_wait_timeout = %u,"
             " autocommit = 1",
             wait, wait);
    if (mysql_query(c, sql) != 0 ||
        mysql_query(c, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ") != 0) {
        snprintf(msg, sizeof(msg), "%s", mysql_error(c));
        mysql_close(c);
        return mk_fail(eb, MK_EUNAVAIL, "mysql: connect: %s", msg);
    }
    s->conn = c;
    /* MariaDB 10.3.3 added table value constructors; MySQL's (8.0.19) need
     * ROW(...) and are not used. */
    s->values = maria && v >= 100303ul;
    if (s->was_up) {
        mk_log(MK_LOG_INFO, "store.mysql", "reconnected to %s:%u", s->dsn.host, s->dsn.port);
    }
    return 0;
}

/* Connects if needed, unless inside a transaction: a transaction does not
 * survive its connection, so that is an error for its owner to undo. */
static int my_usable(struct my_store *s, struct mk_errbuf *eb)
{
    if (s->in_tx) {
        return s->conn ? 0 : mk_fail(eb, MK_EUNAVAIL, "mysql: connection lost");
    }
    if (s->conn) {
        return 0;
    }
    int err = my_connect(s, MY_IO_TIMEOUT, eb);
    s->was_up = s->was_up || err == 0;
    return err;
}

/* ---- running and streaming --------------------------------------------------- */

static int my_send(struct my_store *s, const struct my_sql *q, const char *sql,
                   struct mk_errbuf *eb)
{
    if (q && q->err) {
        return mk_fail(eb, q->err, "mysql: a statement past %d bytes or out of memory",
                       MY_SQL_MAX);
    }
    /* A row callback that calls this store again would send on a connection
     * still reading rows; refused, before it can drop the connection under
     * the result. */
    if (s->streaming) {
        return mk_fail(eb, MK_EINVAL, "mysql: called from inside a load's row callback");
    }
    int err = my_usable(s, eb);
    if (err < 0) {
        return err;
    }
    const char *text = q ? q->p : sql;
    size_t len = q ? q->len : sql ? strlen(sql) : 0;
    if (mysql_real_query(s->conn, text ? text : "", (unsigned long)len) != 0) {
        return my_fail(s, "query", eb);
    }
    return 0;
}

int my_exec(struct my_store *s, const struct my_sql *q, const char *sql, uint64_t *affected,
            struct mk_errbuf *eb)
{
    int err = my_send(s, q, sql, eb);
    if (err < 0) {
        return err;
    }
    if (mysql_field_count(s->conn) > 0) {
        MYSQL_RES *r = mysql_use_result(s->conn);
        if (r) {
            mysql_free_result(r);
        }
    }
    if (affected) {
        my_ulonglong n = mysql_affected_rows(s->conn);
        *affected = n == (my_ulonglong)-1 ? 0 : n;
    }
    return 0;
}

int my_exec_update(struct my_store *s, const struct my_sql *q, uint64_t *matched,
                   struct mk_errbuf *eb)
{
    int err = my_exec(s, q, NULL, matched, eb);
    /* "Rows matched: 1  Changed: 0  Warnings: 0" */
    const char *info = err == 0 && s->conn ? mysql_info(s->conn) : NULL;
    if (info && strncmp(info, "Rows matched: ", 14) == 0) {
        *matched = strtoull(info + 14, NULL, 10);
    }
    return err;
}

int my_stream(struct my_store *s, const struct my_sql *q, const char *sql, const char *what,
              my_row_fn fn, void *arg, struct mk_errbuf *eb)
{
    int err = my_send(s, q, sql, eb);
    if (err < 0) {
        return err;
    }
    MYSQL_RES *res = mysql_use_result(s->conn);
    if (!res) {
        return mysql_field_count(s->conn) == 0 ? 0 : my_fail(s, what, eb);
    }
    struct my_row row = {.n = mysql_num_fields(res)};
    int stop = 0;
    MYSQL_ROW v;
    /* After the caller stops, the rest is read and dropped by
     * mysql_free_result: the connection must be idle for the next call. */
    s->streaming = true;
    while (stop == 0 && (v = mysql_fetch_row(res)) != NULL) {
        row.v = v;
        row.len = mysql_fetch_lengths(res);
        stop = fn(&row, arg);
        stop = stop > 0 ? 0 : stop;
    }
    s->streaming = false;
    unsigned e = stop == 0 ? mysql_errno(s->conn) : 0;
    char msg[MYSQL_ERRMSG_SIZE];
    snprintf(msg, sizeof(msg), "%s", mysql_error(s->conn));
    mysql_free_result(res);
    if (e != 0) {
        return my_fail_with(s, e, msg, what, eb);
    }
    if (stop < 0) {
        return mk_fail(eb, stop, "mysql: loading %s stopped by the caller", what);
    }
    /* Draining after a stop may itself have met a lost connection. */
    if (mysql_errno(s->conn) && my_errno_is_lost(mysql_errno(s->conn))) {
        my_drop(s);
    }
    return 0;
}

/* sql's prepared statement on this connection, preparing it the first time. */
static MYSQL_STMT *my_prepared(struct my_store *s, const char *sql, int *err,
                               struct mk_errbuf *eb)
{
    for (int i = 0; i < s->nstmts; i++) {
        if (s->stmts[i].sql == sql) {
            return s->stmts[i].st;
        }
    }
    if (s->nstmts == MY_STMTS_MAX) {
        *err = mk_fail(eb, MK_ELIMIT, "mysql: no room for prepared statements");
        return NULL;
    }
    MYSQL_STMT *st = mysql_stmt_init(s->conn);
    if (!st) {
        *err = mk_fail(eb, MK_ENOMEM, "mysql: out of memory");
        return NULL;
    }
    if (mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql)) != 0) {
        char msg[MYSQL_ERRMSG_SIZE];
        unsigned e = mysql_stmt_errno(st);
        snprintf(msg, sizeof(msg), "%s", mysql_stmt_error(st));
        mysql_stmt_close(st);
        *err = my_fail_with(s, e, msg, "prepare", eb);
        return NULL;
    }
    s->stmts[s->nstmts++] = (struct my_stmt){.sql = sql, .st = st};
    return st;
}

int my_exec_ints(struct my_store *s, const char *sql, const int64_t *v, unsigned n,
                 uint64_t *affected, struct mk_errbuf *eb)
{
    MYSQL_BIND b[MY_INTS_MAX];
    if (n > MY_INTS_MAX) {
        return mk_fail(eb, MK_ELIMIT, "mysql: %u parameters (at most %d)", n, MY_INTS_MAX);
    }
    int err = s->streaming ? mk_fail(eb, MK_EINVAL, "mysql: called from inside a load's row"
                                                    " callback")
                           : my_usable(s, eb);
    MYSQL_STMT *st = err == 0 ? my_prepared(s, sql, &err, eb) : NULL;
    if (!st) {
        return err;
    }
    memset(b, 0, sizeof(b));
    for (unsigned i = 0; i < n; i++) {
        b[i].buffer_type = MYSQL_TYPE_LONGLONG;
        b[i].buffer = (void *)&v[i];
    }
    if (mysql_stmt_bind_param(st, b) != 0 || mysql_stmt_execute(st) != 0) {
        char msg[MYSQL_ERRMSG_SIZE];
        unsigned e = mysql_stmt_errno(st);
        snprintf(msg, sizeof(msg), "%s", mysql_stmt_error(st));
        return my_fail_with(s, e, msg, "query", eb);
    }
    if (affected) {
        my_ulonglong rows = mysql_stmt_affected_rows(st);
        *affected = rows == (my_ulonglong)-1 ? 0 : rows;
    }
    return 0;
}

struct my_one_sink {
    my_row_fn fn;
    void *arg;
    bool found;
};

static int my_one_row(const struct my_row *r, void *arg)
{
    struct my_one_sink *o = arg;
    if (o->found) {
        return 0;
    }
    o->found = true;
    return o->fn(r, o->arg);
}

int my_one(struct my_store *s, const struct my_sql *q, const char *sql, my_row_fn fn, void *arg,
           bool *found, struct mk_errbuf *eb)
{
    struct my_one_sink o = {.fn = fn, .arg = arg};
    int err = my_stream(s, q, sql, "row", my_one_row, &o, eb);
    *found = o.found;
    return err;
}

bool my_has_values(const struct my_store *s)
{
    return s->conn && s->values;
}

uint64_t my_insert_id(struct my_store *s)
{
    return s->conn ? mysql_insert_id(s->conn) : 0;
}

int my_begin(struct my_store *s, const char *begin_sql, struct mk_errbuf *eb)
{
    s->in_tx = false;
    int err = my_exec(s, NULL, begin_sql, NULL, eb);
    s->in_tx = err == 0;
    return err;
}

int my_end(struct my_store *s, int err, struct mk_errbuf *eb)
{
    if (err == 0) {
        err = my_exec(s, NULL, "COMMIT", NULL, eb);
    }
    if (err != 0 && s->conn) {
        /* A connection that cannot even roll back is dropped by my_exec. */
        struct mk_errbuf ignored;
        my_exec(s, NULL, "ROLLBACK", NULL, &ignored);
    }
    s->in_tx = false;
    return err;
}

/* ---- schema ------------------------------------------------------------------ */

#define MY_TABLE " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

/* Migration i takes the schema from version i to i + 1; only ever append.
 * MySQL commits each DDL statement on its own, so a migration cannot be one
 * transaction: every statement must be safe to run again after a crash
 * half-way (CREATE TABLE IF NOT EXISTS, inserts that ignore a duplicate).
 * Version 1 mirrors the postgres schema 1 in MySQL's types (BIGINT UNSIGNED
 * counters, BINARY(20) hashes, utf8mb4_bin text: passkeys and names compare
 * byte for byte); version 2 adds suspicious uploads and freeleech tokens. */
static const char *const my_migration_v1[] = {
    "CREATE TABLE IF NOT EXISTS classes ("
    " id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " name VARCHAR(64) NOT NULL,"
    " upload_multiplier INT UNSIGNED NOT NULL DEFAULT 1000,"
    " download_multiplier INT UNSIGNED NOT NULL DEFAULT 1000,"
    " may_download BOOLEAN NOT NULL DEFAULT TRUE,"
    " UNIQUE KEY classes_name (name))" MY_TABLE,
    "INSERT INTO classes (id, name) VALUES (1, 'user') ON DUPLICATE KEY UPDATE id = id",
    "CREATE TABLE IF NOT EXISTS users ("
    " id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " passkey VARCHAR(64) NOT NULL,"
    " name VARCHAR(64) NULL,"
    " enabled BOOLEAN NOT NULL DEFAULT TRUE,"
    " can_download BOOLEAN NOT NULL DEFAULT TRUE,"
    " class_id INT UNSIGNED NOT NULL DEFAULT 1,"
    " upload_multiplier INT UNSIGNED NOT NULL DEFAULT 1000,"
    " download_multiplier INT UNSIGNED NOT NULL DEFAULT 1000,"
    " uploaded BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " downloaded BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " raw_uploaded BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " raw_downloaded BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " seed_time BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " leech_time BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " bonus BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " announces BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL DEFAULT 0,"
    " UNIQUE KEY users_passkey (passkey),"
    " UNIQUE KEY users_name (name),"
    " KEY users_class (class_id))" MY_TABLE,
    "CREATE TABLE IF NOT EXISTS torrents ("
    " id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " info_hash BINARY(20) NOT NULL,"
    " enabled BOOLEAN NOT NULL DEFAULT TRUE,"
    " deleted BOOLEAN NOT NULL DEFAULT FALSE,"
    " deleted_reason VARCHAR(255) NOT NULL DEFAULT '',"
    " snatches BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " name VARCHAR(255) NULL,"
    " size BIGINT UNSIGNED NULL,"
    " freeleech BOOLEAN NOT NULL DEFAULT FALSE,"
    " upload_multiplier INT UNSIGNED NOT NULL DEFAULT 1000,"
    " download_multiplier INT UNSIGNED NOT NULL DEFAULT 1000,"
    " transferred BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL DEFAULT 0,"
    " UNIQUE KEY torrents_info_hash (info_hash))" MY_TABLE,
    "CREATE TABLE IF NOT EXISTS whitelist ("
    " prefix VARBINARY(20) NOT NULL PRIMARY KEY,"
    " name VARCHAR(64) NOT NULL)" MY_TABLE,
    "CREATE TABLE IF NOT EXISTS snatches ("
    " user_id INT UNSIGNED NOT NULL,"
    " torrent_id INT UNSIGNED NOT NULL,"
    " at BIGINT NOT NULL,"
    " PRIMARY KEY (user_id, torrent_id),"
    " KEY snatches_torrent (torrent_id))" MY_TABLE,
    "CREATE TABLE IF NOT EXISTS user_torrents ("
    " user_id INT UNSIGNED NOT NULL,"
    " torrent_id INT UNSIGNED NOT NULL,"
    " uploaded BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " downloaded BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " raw_uploaded BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " raw_downloaded BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " seed_time BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " leech_time BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " announces BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " first_announce BIGINT NOT NULL,"
    " last_announce BIGINT NOT NULL,"
    " completed_at BIGINT NULL,"
    " PRIMARY KEY (user_id, torrent_id),"
    " KEY user_torrents_torrent (torrent_id))" MY_TABLE,
    "CREATE TABLE IF NOT EXISTS journal_applied ("
    " boot BIGINT UNSIGNED NOT NULL,"
    " writer INT UNSIGNED NOT NULL,"
    " seq BIGINT UNSIGNED NOT NULL,"
    " records BIGINT UNSIGNED NOT NULL,"
    " applied_at BIGINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY (boot, writer, seq))" MY_TABLE,
    "CREATE TABLE IF NOT EXISTS settings ("
    " `key` VARCHAR(64) NOT NULL PRIMARY KEY,"
    " value VARCHAR(255) NOT NULL)" MY_TABLE,
    "CREATE TABLE IF NOT EXISTS peers ("
    " torrent_id INT UNSIGNED NOT NULL,"
    " user_id INT UNSIGNED NOT NULL,"
    " peer_id BINARY(20) NOT NULL,"
    " family TINYINT UNSIGNED NOT NULL,"
    " ip VARBINARY(16) NOT NULL,"
    " port SMALLINT UNSIGNED NOT NULL,"
    " uploaded BIGINT UNSIGNED NOT NULL,"
    " downloaded BIGINT UNSIGNED NOT NULL,"
    " seeder BOOLEAN NOT NULL,"
    " partial BOOLEAN NOT NULL,"
    " last_seen BIGINT NOT NULL,"
    " version BIGINT NOT NULL,"
    " gone BOOLEAN NOT NULL,"
    " PRIMARY KEY (torrent_id, user_id, peer_id),"
    " KEY peers_last_seen (last_seen))" MY_TABLE,
    NULL,
};

static const char *const my_migration_v2[] = {
    /* Uploads not credited because they were too good to be true. */
    "CREATE TABLE IF NOT EXISTS suspicious ("
    " id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " user_id INT UNSIGNED NOT NULL,"
    " torrent_id INT UNSIGNED NOT NULL,"
    " at BIGINT NOT NULL,"
    " uploaded BIGINT UNSIGNED NOT NULL,"
    " reason VARCHAR(16) NOT NULL,"
    " KEY suspicious_user (user_id, at))" MY_TABLE,
    /* Freeleech tokens: a user's own factors on one torrent, until expires_at. */
    "CREATE TABLE IF NOT EXISTS tokens ("
    " user_id INT UNSIGNED NOT NULL,"
    " torrent_id INT UNSIGNED NOT NULL,"
    " upload_multiplier INT UNSIGNED NOT NULL DEFAULT 1000,"
    " download_multiplier INT UNSIGNED NOT NULL DEFAULT 0,"
    " expires_at BIGINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY (user_id, torrent_id))" MY_TABLE,
    NULL,
};

static const char *const *const my_migrations[MY_SCHEMA_VERSION] = {my_migration_v1,
                                                                     my_migration_v2};

static int my_seed_whitelist(struct my_store *s, struct mk_errbuf *eb)
{
    struct my_sql q = {0};
    my_sqlf(&q, "INSERT INTO whitelist (prefix, name) VALUES ");
    for (size_t i = 0; i < store_default_whitelist_len; i++) {
        my_sqlf(&q, "%s(", i ? ", " : "");
        const struct store_client_prefix *c = &store_default_whitelist[i];
        my_sql_bytes(&q, c->prefix, strlen(c->prefix));
        my_sqlf(&q, ", ");
        my_sql_text(&q, c->name);
        my_sqlf(&q, ")");
    }
    my_sqlf(&q, " ON DUPLICATE KEY UPDATE prefix = prefix");
    int err = my_exec(s, &q, NULL, NULL, eb);
    my_sql_free(&q);
    return err;
}

struct my_version {
    int64_t version, rows;
    bool lock;
};

static int my_version_row(const struct my_row *r, void *arg)
{
    struct my_version *v = arg;
    v->version = my_col_int(r, 0);
    v->rows = my_col_int(r, 1);
    return 0;
}

static int my_lock_row(const struct my_row *r, void *arg)
{
    ((struct my_version *)arg)->lock = my_col_int(r, 0) == 1;
    return 0;
}

/* Brings the schema to MY_SCHEMA_VERSION under GET_LOCK (server-wide, named
 * after the database): a second node starting at the same time waits, then
 * finds the work done. Each migration's version is recorded when it is
 * complete, so a crash half-way reruns only that migration. */
static int my_migrate(struct my_store *s, struct mk_errbuf *eb)
{
    static const char lock_name[] = "CONCAT('mika:', LEFT(COALESCE(DATABASE(), ''), 59))";
    struct my_version v = {0};
    bool found;
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT GET_LOCK(%s, %d)", lock_name, MY_MIGRATE_LOCK_WAIT);
    int err = my_one(s, NULL, sql, my_lock_row, &v, &found, eb);
    if (err == 0 && !v.lock) {
        err = mk_fail(eb, MK_EUNAVAIL,
                      "mysql: schema: another node held the migration lock for %d s",
                      MY_MIGRATE_LOCK_WAIT);
    }
    if (err == 0) {
        err = my_exec(s, NULL,
                      "CREATE TABLE IF NOT EXISTS mika_schema (version INT NOT NULL)" MY_TABLE,
                      NULL, eb);
    }
    if (err == 0) {
        err = my_one(s, NULL, "SELECT COALESCE(MAX(version), 0), COUNT(*) FROM mika_schema",
                     my_version_row, &v, &found, eb);
    }
    if (err == 0 && (v.version < 0 || v.version > MY_SCHEMA_VERSION)) {
        err = mk_fail(eb, MK_ENOTSUP,
                      "mysql: schema version %" PRId64 " is not one this mika knows (0..%d)",
                      v.version, MY_SCHEMA_VERSION);
    }
    for (int64_t ver = v.version; err == 0 && ver < MY_SCHEMA_VERSION; ver++) {
        for (const char *const *st = my_migrations[ver]; err == 0 && *st; st++) {
            err = my_exec(s, NULL, *st, NULL, eb);
        }
        if (err == 0 && ver == 0) {
            err = my_seed_whitelist(s, eb);
        }
        if (err == 0) {
            snprintf(sql, sizeof(sql),
                     v.rows ? "UPDATE mika_schema SET version = %" PRId64
                            : "INSERT INTO mika_schema (version) VALUES (%" PRId64 ")",
                     ver + 1);
            err = my_exec(s, NULL, sql, NULL, eb);
            v.rows = 1;
        }
        if (err == 0) {
            mk_log(MK_LOG_INFO, "store.mysql", "schema migrated to version %" PRId64, ver + 1);
        }
    }
    if (s->conn) {
        snprintf(sql, sizeof(sql), "DO RELEASE_LOCK(%s)", lock_name);
        struct mk_errbuf ignored;
        my_exec(s, NULL, sql, NULL, &ignored);
    }
    return err;
}

static void my_close(void *ctx)
{
    struct my_store *s = ctx;
    if (!s) {
        return;
    }
    my_drop(s);
    my_dsn_free(&s->dsn);
    free(s);
}

static int my_open(void **ctx, const struct store_cfg *cfg, struct mk_errbuf *eb)
{
    if (!cfg || !cfg->dsn || !*cfg->dsn) {
        return mk_fail(eb, MK_EINVAL, "mysql: no dsn");
    }
    struct my_store *s = calloc(1, sizeof(*s));
    if (!s) {
        return mk_fail(eb, MK_ENOMEM, "mysql: out of memory");
    }
    int err = my_dsn_parse(cfg->dsn, &s->dsn, eb);
    /* The migration gets a connection of its own with long timeouts (it may
     * wait for another node's); the store's own has short ones. */
    if (err == 0) {
        err = my_connect(s, MY_MIGRATE_IO_TIMEOUT, eb);
    }
    if (err == 0) {
        err = my_migrate(s, eb);
        my_drop(s);
    }
    if (err == 0) {
        err = my_usable(s, eb);
    }
    if (err < 0) {
        my_close(s);
        return err;
    }
    *ctx = s;
    return 0;
}

const struct store_ops store_mysql_ops = {
    .version = MK_STORE_V6,
    .name = "mysql",
    .open = my_open,
    .close = my_close,
    .load_users = my_load_users,
    .load_torrents = my_load_torrents,
    .load_whitelist = my_load_whitelist,
    .load_snatches = my_load_snatches,
    .apply = my_apply,
    .apply_segment = my_apply_segment,
    .ping = my_admin_ping,
    .user_get = my_admin_user_get,
    .user_get_by_passkey = my_admin_user_get_by_passkey,
    .user_list = my_admin_user_list,
    .user_insert = my_admin_user_insert,
    .user_update = my_admin_user_update,
    .user_delete = my_admin_user_delete,
    .torrent_get = my_admin_torrent_get,
    .torrent_insert = my_admin_torrent_insert,
    .torrent_update = my_admin_torrent_update,
    .whitelist_insert = my_admin_whitelist_insert,
    .whitelist_delete = my_admin_whitelist_delete,
    .class_list = my_admin_class_list,
    .class_get = my_admin_class_get,
    .class_insert = my_admin_class_insert,
    .class_update = my_admin_class_update,
    .class_delete = my_admin_class_delete,
    .settings_load = my_admin_settings_load,
    .settings_put = my_admin_settings_put,
    .load_peers = my_load_peers,
    .prune_peers = my_prune_peers,
    .prune_applied = my_prune_applied,
    .user_history = my_user_history,
    .user_suspicious = my_user_suspicious,
    .load_tokens = my_admin_load_tokens,
    .token_put = my_admin_token_put,
    .token_delete = my_admin_token_delete,
    .torrent_get_by_id = my_admin_torrent_get_by_id,
    .apply_segments = my_apply_segments,
};
