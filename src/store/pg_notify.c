/* store/pg_notify.c: the postgres backend's part in a cluster.
 *
 * Owns: change notices (NOTIFY mika_changes / LISTEN on a dedicated
 * connection, waited for with poll() on PQsocket), and the swarm counts each
 * node publishes (tables swarm_counts and cluster_nodes, schema versions 3
 * and 4 in pg.c). Contracts in store.h (MK_STORE_V4).
 * Not here: what a notice means or what counts are for (cluster/).
 * Invariants: a context that listens runs nothing but LISTEN on its
 * connection; liveness is judged by the server's clock (clock_timestamp()),
 * so nodes' clocks may disagree without a node being taken for dead.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/pg_admin.h"

#define PG_NOTIFY_CHANNEL "mika_changes"
/* Rows per statement of counts_put: each is one text parameter of about
 * 41 bytes a row, so a statement stays well under a megabyte. */
#define PG_COUNTS_CHUNK 2000

int pg_notify_publish(void *ctx, const char *payload, struct mk_errbuf *eb)
{
    struct pg_params p = {0};
    pg_param_text(&p, payload);
    return pg_run(ctx, "SELECT pg_notify('" PG_NOTIFY_CHANNEL "', $1)", &p, NULL, eb);
}

/* Hands every notice libpq has read to fn. */
static void pg_notify_drain(PGconn *c, store_change_fn fn, void *arg)
{
    PGnotify *n;
    while ((n = PQnotifies(c)) != NULL) {
        if (strcmp(n->relname, PG_NOTIFY_CHANNEL) == 0 && n->extra) {
            fn(n->extra, strlen(n->extra), arg);
        }
        PQfreemem(n);
    }
}

static int pg_notify_lost(struct pg_store *s, struct mk_errbuf *eb, const char *what)
{
    char msg[160];
    PGconn *c = pg_conn(s);
    snprintf(msg, sizeof(msg), "%s", c ? PQerrorMessage(c) : "not connected");
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) {
        msg[--n] = '\0';
    }
    pg_disconnect(s);
    return mk_fail(eb, MK_EUNAVAIL, "postgres: %s: connection lost: %s", what, msg);
}

int pg_notify_listen(void *ctx, int timeout_ms, store_change_fn fn, void *arg,
                     struct mk_errbuf *eb)
{
    struct pg_store *s = ctx;
    if (!*pg_listening(s)) {
        int err = pg_exec(s, "LISTEN " PG_NOTIFY_CHANNEL, eb);
        if (err < 0) {
            /* Whatever went wrong, the caller's answer is to wait and retry
             * on a fresh connection. */
            pg_disconnect(s);
            if (err != MK_EUNAVAIL) {
                char msg[sizeof(eb->msg)];
                snprintf(msg, sizeof(msg), "%s", eb->msg);
                err = mk_fail(eb, MK_EUNAVAIL, "%s", msg);
            }
            return err;
        }
        *pg_listening(s) = true;
        fn(NULL, 0, arg); /* anything sent before this moment is not ours to see */
    }
    PGconn *c = pg_conn(s);
    pg_notify_drain(c, fn, arg);
    struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
    if (pfd.fd < 0) {
        return pg_notify_lost(s, eb, "listen");
    }
    int ready = poll(&pfd, 1, timeout_ms);
    if (ready <= 0) {
        return 0; /* a timeout, or a signal: the caller comes back */
    }
    if (!PQconsumeInput(c) || PQstatus(c) == CONNECTION_BAD) {
        return pg_notify_lost(s, eb, "listen");
    }
    /* A terminated backend sends an error and closes: libpq may still read
     * that as input, so look for what else it left behind. */
    PGresult *r;
    while (!PQisBusy(c) && (r = PQgetResult(c)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        PQclear(r);
        if (st == PGRES_FATAL_ERROR) {
            return pg_notify_lost(s, eb, "listen");
        }
    }
    pg_notify_drain(c, fn, arg);
    return 0;
}

/* ---- swarm counts ---------------------------------------------------------- */

/* Comma-separated lists of one chunk's rows, the statements' parameters. */
struct pg_counts_lists {
    char *hashes, *seeders, *leechers, *snatches, *ats;
    size_t nh, ns, nl, nn, na;
};

static void pg_counts_hex(const uint8_t *b, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 20; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
}

static const char PG_COUNTS_UPSERT[] =
    "INSERT INTO swarm_counts (node_id, info_hash, seeders, leechers, snatches, announced_at,"
    "  updated_at)"
    " SELECT $1, decode(h, 'hex'), s::bigint, l::bigint, n::bigint, a::bigint,"
    "  extract(epoch FROM now())::bigint"
    " FROM unnest(string_to_array($2, ','), string_to_array($3, ','), string_to_array($4, ','),"
    "  string_to_array($5, ','), string_to_array($6, ',')) AS u(h, s, l, n, a)"
    " ON CONFLICT (node_id, info_hash) DO UPDATE SET seeders = EXCLUDED.seeders,"
    "  leechers = EXCLUDED.leechers, snatches = EXCLUDED.snatches,"
    "  announced_at = EXCLUDED.announced_at, updated_at = EXCLUDED.updated_at";
static const char PG_COUNTS_DELETE[] =
    "DELETE FROM swarm_counts WHERE node_id = $1 AND info_hash = ANY"
    " (SELECT decode(h, 'hex') FROM unnest(string_to_array($2, ',')) AS u(h))";
static const char PG_COUNTS_RESET[] = "DELETE FROM swarm_counts WHERE node_id = $1";
static const char PG_COUNTS_ALIVE[] =
    "INSERT INTO cluster_nodes (node_id, seen_at)"
    " VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)"
    " ON CONFLICT (node_id) DO UPDATE SET seen_at = EXCLUDED.seen_at";

/* Upserts (zero false) or deletes (zero true) the rows of one chunk. */
static int pg_counts_chunk(struct pg_store *s, uint16_t node, const struct swarm_count_row *rows,
                           size_t n, bool zero, struct pg_counts_lists *l, struct mk_errbuf *eb)
{
    l->nh = l->ns = l->nl = l->nn = l->na = 0;
    for (size_t i = 0; i < n; i++) {
        bool is_zero = rows[i].seeders == 0 && rows[i].leechers == 0;
        if (is_zero != zero) {
            continue;
        }
        if (l->nh) {
            l->hashes[l->nh++] = ',';
            l->seeders[l->ns++] = ',';
            l->leechers[l->nl++] = ',';
            l->snatches[l->nn++] = ',';
            l->ats[l->na++] = ',';
        }
        pg_counts_hex(rows[i].info_hash, l->hashes + l->nh);
        l->nh += 40;
        l->ns += (size_t)sprintf(l->seeders + l->ns, "%u", rows[i].seeders);
        l->nl += (size_t)sprintf(l->leechers + l->nl, "%u", rows[i].leechers);
        l->nn += (size_t)sprintf(l->snatches + l->nn, "%u", rows[i].snatches);
        l->na += (size_t)sprintf(l->ats + l->na, "%u", rows[i].announced_at);
    }
    if (l->nh == 0) {
        return 0;
    }
    l->hashes[l->nh] = l->seeders[l->ns] = l->leechers[l->nl] = '\0';
    l->snatches[l->nn] = l->ats[l->na] = '\0';
    struct pg_params p = {0};
    pg_param_int(&p, node);
    pg_param_text(&p, l->hashes);
    if (zero) {
        return pg_run(s, PG_COUNTS_DELETE, &p, NULL, eb);
    }
    pg_param_text(&p, l->seeders);
    pg_param_text(&p, l->leechers);
    pg_param_text(&p, l->snatches);
    pg_param_text(&p, l->ats);
    return pg_run(s, PG_COUNTS_UPSERT, &p, NULL, eb);
}

int pg_notify_counts_put(void *ctx, uint16_t node, bool reset, const struct swarm_count_row *rows,
                         size_t n, uint32_t ttl_s, struct mk_errbuf *eb)
{
    struct pg_store *s = ctx;
    (void)ttl_s; /* readers judge liveness by cluster_nodes.seen_at */
    size_t chunk = n < PG_COUNTS_CHUNK ? n : PG_COUNTS_CHUNK;
    struct pg_counts_lists l = {
        .hashes = malloc(chunk * 41 + 1),
        .seeders = malloc(chunk * 11 + 1),
        .leechers = malloc(chunk * 11 + 1),
        .snatches = malloc(chunk * 11 + 1),
        .ats = malloc(chunk * 11 + 1),
    };
    int err = 0;
    if (!l.hashes || !l.seeders || !l.leechers || !l.snatches || !l.ats) {
        err = mk_fail(eb, MK_ENOMEM, "postgres: out of memory");
        goto out_free;
    }
    err = pg_begin(s, "BEGIN", eb);
    if (err < 0) {
        goto out_free;
    }
    struct pg_params p = {0};
    pg_param_int(&p, node);
    if (reset) {
        err = pg_run(s, PG_COUNTS_RESET, &p, NULL, eb);
    }
    for (size_t i = 0; err == 0 && i < n; i += chunk) {
        size_t m = n - i < chunk ? n - i : chunk;
        err = pg_counts_chunk(s, node, rows + i, m, false, &l, eb);
        if (err == 0) {
            err = pg_counts_chunk(s, node, rows + i, m, true, &l, eb);
        }
    }
    if (err == 0) {
        err = pg_run(s, PG_COUNTS_ALIVE, &p, NULL, eb);
    }
    err = pg_end(s, err, eb);
out_free:
    free(l.hashes);
    free(l.seeders);
    free(l.leechers);
    free(l.snatches);
    free(l.ats);
    return err;
}

struct pg_counts_sink {
    store_count_fn fn;
    void *arg;
};

static int pg_counts_row(const PGresult *r, void *arg)
{
    struct pg_counts_sink *k = arg;
    if (PQgetlength(r, 0, 0) != 20) {
        return 0;
    }
    struct swarm_count_row row = {
        .seeders = pg_u32(r, 0, 1, UINT32_MAX),
        .leechers = pg_u32(r, 0, 2, UINT32_MAX),
        .node_id = (uint16_t)pg_u32(r, 0, 3, UINT16_MAX),
        .snatches = pg_u32(r, 0, 4, UINT32_MAX),
        .announced_at = pg_u32(r, 0, 5, UINT32_MAX),
    };
    memcpy(row.info_hash, PQgetvalue(r, 0, 0), 20);
    return k->fn(&row, k->arg);
}

int pg_notify_counts_load(void *ctx, uint16_t self, uint32_t ttl_s, store_count_fn fn, void *arg,
                          struct mk_errbuf *eb)
{
    struct pg_params p = {0};
    pg_param_int(&p, self);
    pg_param_int(&p, (int64_t)ttl_s * 1000);
    struct pg_counts_sink k = {fn, arg};
    return pg_stream(ctx,
                     "SELECT c.info_hash, c.seeders, c.leechers, c.node_id, c.snatches, c.announced_at"
                     " FROM swarm_counts c"
                     " JOIN cluster_nodes n ON n.node_id = c.node_id"
                     " WHERE c.node_id <> $1"
                     " AND n.seen_at >= (extract(epoch FROM clock_timestamp()) * 1000)::bigint - $2",
                     &p, "swarm counts", pg_counts_row, &k, eb);
}
