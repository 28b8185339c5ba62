/* store/split.c: one store made of several, a backend per kind of state.
 *
 * Owns: opening the backends that [store.users], [store.torrents] and
 * [store.peers] name (kinds placed alike share one), routing each store
 * method to the backend of its kind, applying a journal segment once in
 * each backend with the parts that backend holds, and naming torrents by
 * info_hash in rows that a users' or peers' backend keeps by torrent id.
 * Not here: any database; the backends (one file each) do the work.
 * Invariant: when every kind shares one backend, store_open_kinds returns
 * that backend itself and nothing here runs on any call.
 */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define SPLIT_KINDS 3

struct split_store {
    struct store part[SPLIT_KINDS]; /* only the parts some kind owns are open */
    uint32_t kinds[SPLIT_KINDS];    /* STORE_KIND_* each open part holds */
    int of_kind[SPLIT_KINDS];       /* index into part of users, torrents, peers */
};

enum { SPLIT_USERS, SPLIT_TORRENTS, SPLIT_PEERS };

static struct store *split_part(struct split_store *s, int kind)
{
    return &s->part[s->of_kind[kind]];
}

static bool split_same_place(const struct store_place *a, const struct store_place *b)
{
    if (strcmp(a->backend, b->backend) != 0) {
        return false;
    }
    if (strcmp(a->backend, "sqlite") == 0 || strcmp(a->backend, "memory") == 0) {
        return strcmp(a->path, b->path) == 0;
    }
    return strcmp(a->dsn, b->dsn) == 0;
}

static void split_close(void *ctx)
{
    struct split_store *s = ctx;
    for (int i = 0; i < SPLIT_KINDS; i++) {
        store_close(&s->part[i]);
    }
    free(s);
}

/* ---- naming torrents by id ----------------------------------------------- */

static bool split_hash_is_zero(const uint8_t h[20])
{
    static const uint8_t zero[20];
    return memcmp(h, zero, 20) == 0;
}

/* torrent id -> info_hash, sorted by id, for a start-up load of rows that a
 * users' or peers' backend keeps by torrent id. Built by streaming the
 * torrents' backend once per load; 24 bytes a torrent, freed after. */
struct split_ids {
    struct split_id {
        uint32_t id;
        uint8_t info_hash[20];
    } *v;
    size_t n, cap;
};

static int split_ids_add(const struct torrent_row *row, void *arg)
{
    struct split_ids *ids = arg;
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 4096;
        struct split_id *v = realloc(ids->v, cap * sizeof(*v));
        if (!v) {
            return MK_ENOMEM;
        }
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n].id = row->id;
    memcpy(ids->v[ids->n].info_hash, row->info_hash, 20);
    ids->n++;
    return 0;
}

static int split_id_cmp(const void *a, const void *b)
{
    const struct split_id *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int split_ids_load(struct split_store *s, struct split_ids *ids, struct mk_errbuf *eb)
{
    memset(ids, 0, sizeof(*ids));
    int rc = store_load_torrents(split_part(s, SPLIT_TORRENTS), split_ids_add, ids, eb);
    if (rc == MK_ENOMEM) {
        mk_fail(eb, rc, "out of memory naming torrents by id");
    }
    if (rc < 0) {
        free(ids->v);
        ids->v = NULL;
        return rc;
    }
    if (ids->n > 1) {
        qsort(ids->v, ids->n, sizeof(*ids->v), split_id_cmp);
    }
    return 0;
}

/* Fills h from the map when it is all zero; false if the torrent is gone. */
static bool split_ids_name(const struct split_ids *ids, uint32_t id, uint8_t h[20])
{
    if (!split_hash_is_zero(h)) {
        return true;
    }
    if (ids->n == 0) {
        return false;
    }
    struct split_id key = {.id = id};
    const struct split_id *hit = bsearch(&key, ids->v, ids->n, sizeof(*ids->v), split_id_cmp);
    if (!hit) {
        return false;
    }
    memcpy(h, hit->info_hash, 20);
    return true;
}

/* A row that names its torrent only by id is passed on with the info_hash
 * filled in, or dropped when the torrent is gone (as a join would). */
struct split_named {
    const struct split_ids *ids;
    store_snatch_fn snatch;
    store_peer_fn peer;
    store_token_fn token;
    void *arg;
};

static int split_named_snatch(const struct snatch_row *row, void *arg)
{
    struct split_named *nm = arg;
    struct snatch_row r = *row;
    if (!split_ids_name(nm->ids, r.torrent_id, r.info_hash)) {
        return 0;
    }
    return nm->snatch(&r, nm->arg);
}

static int split_named_peer(const struct peer_row *row, void *arg)
{
    struct split_named *nm = arg;
    struct peer_row r = *row;
    if (!split_ids_name(nm->ids, r.torrent_id, r.info_hash)) {
        return 0;
    }
    return nm->peer(&r, nm->arg);
}

static int split_named_token(const struct token_row *row, void *arg)
{
    struct split_named *nm = arg;
    struct token_row r = *row;
    if (!split_ids_name(nm->ids, r.torrent_id, r.info_hash)) {
        return 0;
    }
    return nm->token(&r, nm->arg);
}

/* Whether rows of kind's backend need their torrents named by us. */
static bool split_apart(struct split_store *s, int kind)
{
    return s->of_kind[kind] != s->of_kind[SPLIT_TORRENTS];
}

static int split_load_snatches(void *ctx, store_snatch_fn fn, void *arg, struct mk_errbuf *eb)
{
    struct split_store *s = ctx;
    if (!split_apart(s, SPLIT_USERS)) {
        return store_load_snatches(split_part(s, SPLIT_USERS), fn, arg, eb);
    }
    struct split_ids ids;
    int rc = split_ids_load(s, &ids, eb);
    if (rc == 0) {
        struct split_named nm = {.ids = &ids, .snatch = fn, .arg = arg};
        rc = store_load_snatches(split_part(s, SPLIT_USERS), split_named_snatch, &nm, eb);
        free(ids.v);
    }
    return rc;
}

static int split_load_peers(void *ctx, int64_t seen_since, store_peer_fn fn, void *arg,
                            struct mk_errbuf *eb)
{
    struct split_store *s = ctx;
    if (!split_apart(s, SPLIT_PEERS)) {
        return store_load_peers(split_part(s, SPLIT_PEERS), seen_since, fn, arg, eb);
    }
    struct split_ids ids;
    int rc = split_ids_load(s, &ids, eb);
    if (rc == 0) {
        struct split_named nm = {.ids = &ids, .peer = fn, .arg = arg};
        rc = store_load_peers(split_part(s, SPLIT_PEERS), seen_since, split_named_peer, &nm, eb);
        free(ids.v);
    }
    return rc;
}

static int split_load_tokens(void *ctx, uint32_t user_id, int64_t now, store_token_fn fn,
                             void *arg, struct mk_errbuf *eb)
{
    struct split_store *s = ctx;
    if (!split_apart(s, SPLIT_USERS)) {
        return store_load_tokens(split_part(s, SPLIT_USERS), user_id, now, fn, arg, eb);
    }
    struct split_ids ids;
    int rc = split_ids_load(s, &ids, eb);
    if (rc == 0) {
        struct split_named nm = {.ids = &ids, .token = fn, .arg = arg};
        rc = store_load_tokens(split_part(s, SPLIT_USERS), user_id, now, split_named_token, &nm,
                               eb);
        free(ids.v);
    }
    return rc;
}

/* A page of the API's history: a few rows, each named with one lookup. */
struct split_history {
    struct store *torrents;
    store_history_fn fn;
    void *arg;
};

static int split_history_row(const struct history_row *row, void *arg)
{
    struct split_history *sh = arg;
    struct history_row r = *row;
    struct torrent_rec t;
    struct mk_errbuf eb = {{0}};
    if (split_hash_is_zero(r.info_hash) &&
        store_torrent_get_by_id(sh->torrents, r.torrent_id, &t, &eb) == 0) {
        memcpy(r.info_hash, t.row.info_hash, 20);
        r.size = t.has_size ? t.size : 0;
    }
    return sh->fn(&r, sh->arg);
}

static int split_user_history(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
                              store_history_fn fn, void *arg, uint64_t *total,
                              struct mk_errbuf *eb)
{
    struct split_store *s = ctx;
    struct split_history sh = {split_part(s, SPLIT_TORRENTS), fn, arg};
    return store_user_history(split_part(s, SPLIT_USERS), user_id, offset, limit,
                              split_history_row, &sh, total, eb);
}

struct split_suspicious {
    struct store *torrents;
    store_suspicious_fn fn;
    void *arg;
};

static int split_suspicious_row(const struct suspicious_row *row, void *arg)
{
    struct split_suspicious *ss = arg;
    struct suspicious_row r = *row;
    struct torrent_rec t;
    struct mk_errbuf eb = {{0}};
    if (split_hash_is_zero(r.info_hash) &&
        store_torrent_get_by_id(ss->torrents, r.torrent_id, &t, &eb) == 0) {
        memcpy(r.info_hash, t.row.info_hash, 20);
    }
    return ss->fn(&r, ss->arg);
}

static int split_user_suspicious(void *ctx, uint32_t user_id, uint64_t offset, uint32_t limit,
                                 store_suspicious_fn fn, void *arg, uint64_t *total,
                                 struct mk_errbuf *eb)
{
    struct split_store *s = ctx;
    struct split_suspicious ss = {split_part(s, SPLIT_TORRENTS), fn, arg};
    return store_user_suspicious(split_part(s, SPLIT_USERS), user_id, offset, limit,
                                 split_suspicious_row, &ss, total, eb);
}

/* The users' backend keeps tokens by torrent id: find it where torrents live. */
static int split_token_key(struct split_store *s, struct token_row *row, struct mk_errbuf *eb)
{
    if (!split_apart(s, SPLIT_USERS) || row->torrent_id) {
        return 0;
    }
    struct torrent_rec t;
    int rc = store_torrent_get(split_part(s, SPLIT_TORRENTS), row->info_hash, &t, eb);
    if (rc == 0) {
        row->torrent_id = t.row.id;
    }
    return rc;
}

static int split_token_put(void *ctx, const struct token_row *row, struct mk_errbuf *eb)
{
    struct split_store *s = ctx;
    struct token_row r = *row;
    int rc = split_token_key(s, &r, eb);
    return rc ? rc : store_token_put(split_part(s, SPLIT_USERS), &r, eb);
}

static int split_token_delete(void *ctx, const struct token_row *key, struct mk_errbuf *eb)
{
    struct split_store *s = ctx;
    struct token_row r = *key;
    int rc = split_token_key(s, &r, eb);
    return rc ? rc : store_token_delete(split_part(s, SPLIT_USERS), &r, eb);
}

/* ---- the books ----------------------------------------------------------- */

/* Each backend applies the segment's parts it holds and records the segment
 * itself, so a segment half applied when a backend failed is finished by
 * the flusher's retry: the others answer EEXIST and change nothing. */
static int split_apply_segment(void *ctx, const struct store_segment_id *id,
                               const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    struct split_store *s = ctx;
    uint32_t want = id->kinds ? id->kinds : STORE_KIND_ALL;
    int done = 0, again = 0;
    for (int i = 0; i < SPLIT_KINDS; i++) {
        if (!s->part[i].ops || !(s->kinds[i] & want)) {
            continue;
        }
        struct store_segment_id part_id = *id;
        part_id.kinds = s->kinds[i] & want;
        int rc = store_apply_segment(&s->part[i], &part_id, rows, n, eb);
        if (rc == MK_EEXIST) {
            again++;
        } else if (rc < 0) {
            return rc;
        } else {
            done++;
        }
    }
    return done == 0 && again > 0 ? MK_EEXIST : 0;
}

/* Books with no segment id: each backend still gets only its parts, under
 * a fresh id (the split cannot offer apply's all-or-nothing across
 * backends; the daemon's flusher uses apply_segment). */
static int split_apply(void *ctx, const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    struct store_segment_id id = {.writer = UINT32_MAX};
    if (getrandom(&id.boot, sizeof(id.boot), 0) != (ssize_t)sizeof(id.boot)) {
        return mk_fail(eb, MK_EIO, "getrandom failed");
    }
    int rc = split_apply_segment(ctx, &id, rows, n, eb);
    return rc == MK_EEXIST ? 0 : rc;
}

/* ---- routed one to one ---------------------------------------------------- */

#define SPLIT_ROUTE(kind) struct store *st = split_part((struct split_store *)ctx, kind)

static int split_load_users(void *ctx, store_user_fn fn, void *arg, struct mk_errbuf *eb)
{
    SPLIT_ROUTE(SPLIT_USERS);
    return store_load_users(st, fn, arg, eb);
}

static int split_load_torrents(void *ctx, store_torrent_fn fn, void *arg, struct mk_errbuf *eb)
{
    SPLIT_ROUTE(SPLIT_TORRENTS);
    return store_load_torrents(st, fn, arg, eb);
}

static int split_load_whitelist(void *ctx, store_whitelist_fn fn, void *arg, struct mk_errbuf *eb)
{
    SPLIT_ROUTE(SPLIT_USERS);
    return store_load_whitelist(st, fn, arg, eb);
}

static int split_ping(void *ctx, struct mk_errbuf *eb)
{
    struct split_store *s = ctx;
    for (int i = 0; i < SPLIT_KINDS; i++) {
        int rc = s->part[i].ops ? store_ping(&s->part[i], eb) : 0;
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

static int split_user_get(void *ctx, uint32_t id, struct user_rec *out, struct mk_errbuf *eb)
{
    SPLIT_ROUTE(SPLIT_USERS);
    return store_user_get(st, id, out, eb);
}

static int split_user_get_by_passkey(void *ctx, const char *passkey, struct user_rec *out,
                                     struct mk_errbuf *eb)
{
    SPLIT_ROUTE(SPLIT_USERS);
    return store_user_get_by_passkey(st, passkey, out, eb);
}

static int split_user_list(void *ctx, const struct user_filter *f, store_user_rec_fn fn,
                           void *arg, uint64_t *total, struct mk_errbuf *eb)
{
    SPLIT_ROUTE(SPLIT_USERS);
    return store_user_list(st, f, fn, arg, total, eb);
}

static int split_user_insert(void *ctx, struct user_rec *rec, bool has_id, struct mk_errbuf *eb)
{
    SPLIT_ROUTE(SPLIT_USERS);
    return store_user_insert(st, rec, has_id, eb);
}

static int split_user_update(void *ctx, const struct user_rec *rec, struct mk_errbuf *eb)
{
    SPLIT_ROUTE(SPLIT_USERS);
    return store_user_update(st, rec, eb);
}

static int split_user_delete(void *ctx, uint32_t id, struct mk_errbuf *eb)
{
    SPLIT_ROUTE(SPLIT_USERS);
    return store_user_delete(st, id, eb);
}

static int split_torrent_get(void *ctx, const uint8_t info_hash[20], struct torrent_rec *out,
                             struct mk_errbuf *eb)
{
    SPLIT_ROUTE(SPLIT_TORRENTS);
    return store_torrent_get(st, info_hash, out, eb);
}

static int split_torrent_get_by_id(void *ctx, uint32_t id, struct torrent_rec *out,
                                   struct mk_errbuf *eb)
{
    SPLIT_ROUTE(SPLIT_TORRENTS);
    return store_torrent_get_by_id(st, id, out, eb);
}

static int split_torrent_insert(void *ctx, struct torrent_rec *rec, struct mk_errbuf *eb)
{
    SPLIT_ROUTE(SPLIT_TORRENTS);
    return store_torrent_insert(st, rec, eb);
}

static int split_torrent_update(void *ctx, const struct torrent_rec *rec, struct mk_errbuf *eb)
{
    SPLIT_ROUTE(SPLIT_TORRENTS);
    return store_torrent_update(st, rec, eb);
}

static int split_whitelist_insert(void *ctx, const struct whitelist_row *row, struct mk_errbuf *eb)
{
    SPLIT_ROUTE(SPLIT_USERS);
    return store_whitelist_insert(st, row, eb);
}

static int split_whitelist_delete(void *ctx, const uint8_t *prefix, size_t len,
                                  struct whitelist_row *out, struct mk_errbuf *eb)
{
    SPLIT_ROUTE(SPLIT_USERS);
    return store_whitelist_delete(st, prefix, len, out, eb);
}

static int split_class_list(void *ctx, store_class_fn fn, void *arg, struct mk_errbuf *eb)
{
    SPLIT_ROUTE(SPLIT_USERS);
    return store_class_list(st, fn, arg, eb);
}

static int split_class_get(void *ctx, uint32_t id, struct class_row *out, struct mk_errbuf *eb)
{
    SPLIT_ROUTE(SPLIT_USERS);
    return store_class_get(st, id, out, eb);
}

static int split_class_insert(void *ctx, struct class_row *row, bool has_id, struct mk_errbuf *eb)
{
    SPLIT_ROUTE(SPLIT_USERS);
    return store_class_insert(st, row, has_id, eb);
}

static int split_class_update(void *ctx, const struct class_row *row, struct mk_errbuf *eb)
{
    SPLIT_ROUTE(SPLIT_USERS);
    return store_class_update(st, row, eb);
}

static int split_class_delete(void *ctx, uint32_t id, struct mk_errbuf *eb)
{
    SPLIT_ROUTE(SPLIT_USERS);
    return store_class_delete(st, id, eb);
}

static int split_settings_load(void *ctx, store_setting_fn fn, void *arg, struct mk_errbuf *eb)
{
    SPLIT_ROUTE(SPLIT_USERS);
    return store_settings_load(st, fn, arg, eb);
}

static int split_settings_put(void *ctx, const struct setting_row *rows, size_t n,
                              struct mk_errbuf *eb)
{
    SPLIT_ROUTE(SPLIT_USERS);
    return store_settings_put(st, rows, n, eb);
}

static int split_prune_peers(void *ctx, int64_t seen_before, struct mk_errbuf *eb)
{
    SPLIT_ROUTE(SPLIT_PEERS);
    return store_prune_peers(st, seen_before, eb);
}

/* Every backend records the segments it applies: each forgets its own.
 * Kinds placed alike share one part (split_open), so each is asked once. */
static int split_prune_applied(void *ctx, int64_t applied_before, uint16_t node,
                               struct mk_errbuf *eb)
{
    struct split_store *s = ctx;
    int err = MK_ENOTSUP;
    for (int i = 0; i < SPLIT_KINDS; i++) {
        if (!s->part[i].ops) {
            continue;
        }
        int rc = store_prune_applied(&s->part[i], applied_before, node, eb);
        if (rc < 0 && rc != MK_ENOTSUP) {
            return rc;
        }
        err = err == MK_OK || rc == MK_OK ? MK_OK : err;
    }
    return err;
}

static const struct store_ops split_ops = {
    .version = MK_STORE_V6,
    .name = "split",
    .close = split_close,
    .load_users = split_load_users,
    .load_torrents = split_load_torrents,
    .load_whitelist = split_load_whitelist,
    .load_snatches = split_load_snatches,
    .apply = split_apply,
    .apply_segment = split_apply_segment,
    .ping = split_ping,
    .user_get = split_user_get,
    .user_get_by_passkey = split_user_get_by_passkey,
    .user_list = split_user_list,
    .user_insert = split_user_insert,
    .user_update = split_user_update,
    .user_delete = split_user_delete,
    .torrent_get = split_torrent_get,
    .torrent_insert = split_torrent_insert,
    .torrent_update = split_torrent_update,
    .whitelist_insert = split_whitelist_insert,
    .whitelist_delete = split_whitelist_delete,
    .class_list = split_class_list,
    .class_get = split_class_get,
    .class_insert = split_class_insert,
    .class_update = split_class_update,
    .class_delete = split_class_delete,
    .settings_load = split_settings_load,
    .settings_put = split_settings_put,
    .load_peers = split_load_peers,
    .prune_peers = split_prune_peers,
    .prune_applied = split_prune_applied,
    .user_history = split_user_history,
    .user_suspicious = split_user_suspicious,
    .load_tokens = split_load_tokens,
    .token_put = split_token_put,
    .token_delete = split_token_delete,
    .torrent_get_by_id = split_torrent_get_by_id,
    /* No cluster methods: cluster/ opens the users' place itself. */
};

int store_open_kinds(struct store *st, const struct store_place places[3], struct mk_errbuf *eb)
{
    st->ops = NULL;
    st->ctx = NULL;
    struct split_store *s = calloc(1, sizeof(*s));
    if (!s) {
        return mk_fail(eb, MK_ENOMEM, "out of memory");
    }
    /* Group kinds by place first: a backend learns every kind it will hold
     * before it opens. */
    int nparts = 0;
    for (int k = 0; k < SPLIT_KINDS; k++) {
        int owner = k;
        for (int j = 0; j < k; j++) {
            if (split_same_place(&places[j], &places[k])) {
                owner = s->of_kind[j];
                break;
            }
        }
        s->of_kind[k] = owner;
        s->kinds[owner] |= 1u << k;
        nparts += owner == k;
    }
    for (int i = 0; i < SPLIT_KINDS; i++) {
        if (!s->kinds[i]) {
            continue;
        }
        struct store_cfg cfg = {.path = places[i].path, .dsn = places[i].dsn,
                                .kinds = s->kinds[i]};
        int rc = store_open(&s->part[i], places[i].backend, &cfg, eb);
        if (rc < 0) {
            split_close(s);
            return rc;
        }
    }
    if (nparts == 1) {
        *st = s->part[0]; /* one backend holds everything: no routing at all */
        free(s);
        return 0;
    }
    st->ops = &split_ops;
    st->ctx = s;
    return 0;
}
