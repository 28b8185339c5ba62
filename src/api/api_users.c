/* api/api_users.c: /api/v1/users: create, read, list, change, rotate, delete.
 *
 * Owns: the user JSON object, the rules for user bodies, and applying a
 * stored change to the in-memory table (users_put / users_remove) and the
 * swarms (a deleted user's peers leave every swarm).
 * Not here: the store's SQL (store/sqlite_admin.c), HTTP (api_server.c).
 * Invariants: each change is stored first, then applied in memory, both with
 * a->mu held; what users_put gets carries the effective download right (the
 * user's own flag AND their class's), read back from the store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acct/rules.h"
#include "api/api_int.h"
#include "auth/users.h"
#include "swarm/torrents.h"
#include "util/log.h"

#define API_USERS_PASSKEY_TRIES 3

static json_t *api_users_json(const struct api *a, const struct user_rec *u)
{
    char url[sizeof(a->announce_base) + MK_PASSKEY_MAX + 16];
    snprintf(url, sizeof(url), "%s/%s/announce", a->announce_base, u->row.passkey);
    json_t *j = json_object();
    json_object_set_new(j, "id", json_integer(u->row.id));
    json_object_set_new(j, "name", u->name[0] ? json_string(u->name) : json_null());
    json_object_set_new(j, "passkey", json_string(u->row.passkey));
    json_object_set_new(j, "announce_url", json_string(url));
    json_object_set_new(j, "enabled", json_boolean(u->row.enabled));
    json_object_set_new(j, "may_download", json_boolean(u->may_download));
    json_object_set_new(j, "class_id", json_integer(u->class_id));
    json_object_set_new(j, "upload_multiplier", api_mult_json(u->up_mult));
    json_object_set_new(j, "download_multiplier", api_mult_json(u->down_mult));
    json_object_set_new(j, "uploaded", json_integer((json_int_t)(u->uploaded & INT64_MAX)));
    json_object_set_new(j, "downloaded", json_integer((json_int_t)(u->downloaded & INT64_MAX)));
    json_object_set_new(j, "raw_uploaded",
                        json_integer((json_int_t)(u->raw_uploaded & INT64_MAX)));
    json_object_set_new(j, "raw_downloaded",
                        json_integer((json_int_t)(u->raw_downloaded & INT64_MAX)));
    json_object_set_new(j, "seed_time", json_integer((json_int_t)(u->seed_time & INT64_MAX)));
    json_object_set_new(j, "leech_time", json_integer((json_int_t)(u->leech_time & INT64_MAX)));
    json_object_set_new(j, "bonus_points", json_real((double)u->bonus / ACCT_POINT));
    json_object_set_new(j, "announces", json_integer((json_int_t)(u->announces & INT64_MAX)));
    json_object_set_new(j, "created_at", json_integer(u->created_at));
    return j;
}

/* Puts the stored user into memory; a failure only delays the change until
 * the next reload, so it is logged, not answered. */
void api_users_apply(struct api *a, const struct user_rec *u)
{
    uint32_t gen = atomic_load(a->generation);
    /* The announce path books with the class's and the user's multipliers. */
    struct user_row row = u->row;
    struct class_row c;
    struct mk_errbuf ceb = {{0}};
    row.has_mults = true;
    row.personal_up = u->up_mult;
    row.personal_down = u->down_mult;
    row.class_up = row.class_down = 1000;
    if (store_class_get(&a->store, u->class_id, &c, &ceb) == 0) {
        row.class_up = c.up_mult;
        row.class_down = c.down_mult;
    }
    int rc = users_put(a->tracker->users, &row, gen);
    if (rc != 0) {
        mk_log(MK_LOG_ERROR, "api", "user %u stored but not applied in memory: %s", u->row.id,
               mk_err_name(rc));
    }
}

/* Name and multipliers and flags common to create and update; -1 on error. */
static int api_users_read_fields(json_t *body, struct user_rec *u, struct api_resp *out)
{
    const char *name = NULL;
    int got = api_get_str(body, "name", MK_NAME_MAX, true, &name, out);
    if (got < 0) {
        return -1;
    }
    if (got > 0) {
        snprintf(u->name, sizeof(u->name), "%s", name ? name : "");
    }
    if (api_get_bool(body, "enabled", &u->row.enabled, out) < 0 ||
        api_get_bool(body, "may_download", &u->may_download, out) < 0 ||
        api_get_u32(body, "class_id", 0, UINT32_MAX - 1, &u->class_id, out) < 0 ||
        api_get_mult(body, "upload_multiplier", &u->up_mult, out) < 0 ||
        api_get_mult(body, "download_multiplier", &u->down_mult, out) < 0) {
        return -1;
    }
    return 0;
}

/* 1 with a passkey from the body, 0 absent, -1 invalid. */
static int api_users_read_passkey(json_t *body, char out_key[MK_PASSKEY_MAX + 1],
                                  struct api_resp *out)
{
    const char *pk = NULL;
    int got = api_get_str(body, "passkey", MK_PASSKEY_MAX, false, &pk, out);
    if (got <= 0) {
        return got;
    }
    if (!api_passkey_ok(pk)) {
        api_error(out, 400, "invalid_value", "passkey: 1..%d characters of [A-Za-z0-9]",
                  MK_PASSKEY_MAX);
        return -1;
    }
    snprintf(out_key, MK_PASSKEY_MAX + 1, "%s", pk);
    return 1;
}

void api_users_create(struct api *a, const struct api_req *r, struct api_resp *out)
{
    static const char *const fields[] = {"id",           "name",     "passkey",
                                         "enabled",      "may_download", "class_id",
                                         "upload_multiplier", "download_multiplier", NULL};
    json_t *body = api_body(r, true, fields, out);
    if (!body) {
        return;
    }
    struct user_rec u = {.row = {.enabled = true}, .may_download = true,
                         .class_id = MK_CLASS_DEFAULT, .up_mult = MK_MULT_ONE,
                         .down_mult = MK_MULT_ONE};
    int has_id = api_get_u32(body, "id", 0, UINT32_MAX - 1, &u.row.id, out);
    int given = has_id < 0 ? -1 : api_users_read_passkey(body, u.row.passkey, out);
    if (given < 0 || api_users_read_fields(body, &u, out) < 0) {
        json_decref(body);
        return;
    }
    json_decref(body);
    struct mk_errbuf eb = {{0}};
    int rc = MK_EEXIST;
    pthread_mutex_lock(&a->mu);
    /* A generated passkey that collides (about never) is drawn again. */
    for (int i = 0; i < API_USERS_PASSKEY_TRIES && rc == MK_EEXIST; i++) {
        if (!given && api_random_passkey(u.row.passkey) != 0) {
            rc = mk_fail(&eb, MK_EIO, "getrandom failed");
            break;
        }
        rc = store_user_insert(&a->store, &u, has_id > 0, &eb);
        if (given || strcmp(eb.msg, "passkey") != 0) {
            break;
        }
    }
    if (rc == 0) {
        api_users_apply(a, &u);
        api_publish(a, CHANGE_USER, u.row.id, NULL);
    }
    pthread_mutex_unlock(&a->mu);
    if (rc != 0) {
        api_store_error(out, rc, &eb, "user");
        return;
    }
    mk_log(MK_LOG_INFO, "api", "user %u created", u.row.id);
    api_ok(out, 201, api_users_json(a, &u));
}

/* Reads user params[0] into *u; -1 with the answer filled. Called with
 * a->mu held (the API's store context is used by one thread at a time). */
static int api_users_load(struct api *a, const struct api_req *r, struct user_rec *u,
                          struct api_resp *out)
{
    uint32_t id;
    if (api_param_id(r->params[0], "id", &id, out) < 0) {
        return -1;
    }
    struct mk_errbuf eb = {{0}};
    int rc = store_user_get(&a->store, id, u, &eb);
    if (rc != 0) {
        api_store_error(out, rc, &eb, "user");
        return -1;
    }
    return 0;
}

void api_users_get(struct api *a, const struct api_req *r, struct api_resp *out)
{
    struct user_rec u;
    pthread_mutex_lock(&a->mu);
    int rc = api_users_load(a, r, &u, out);
    pthread_mutex_unlock(&a->mu);
    if (rc == 0) {
        api_ok(out, 200, api_users_json(a, &u));
    }
}

void api_users_get_by_passkey(struct api *a, const struct api_req *r, struct api_resp *out)
{
    if (!api_passkey_ok(r->params[0])) {
        api_error(out, 400, "invalid_value", "passkey: 1..%d characters of [A-Za-z0-9]",
                  MK_PASSKEY_MAX);
        return;
    }
    struct user_rec u;
    struct mk_errbuf eb = {{0}};
    pthread_mutex_lock(&a->mu);
    int rc = store_user_get_by_passkey(&a->store, r->params[0], &u, &eb);
    pthread_mutex_unlock(&a->mu);
    if (rc != 0) {
        api_store_error(out, rc, &eb, "user");
        return;
    }
    api_ok(out, 200, api_users_json(a, &u));
}

struct api_users_page {
    const struct api *a;
    json_t *arr;
};

static int api_users_page_add(const struct user_rec *u, void *arg)
{
    struct api_users_page *p = arg;
    return json_array_append_new(p->arr, api_users_json(p->a, u)) == 0 ? 0 : MK_ENOMEM;
}

void api_users_list(struct api *a, const struct api_req *r, struct api_resp *out)
{
    static const char *const params[] = {"offset", "limit", "enabled", "may_download",
                                         "class_id", "name", NULL};
    struct user_filter f = {.enabled = -1, .may_download = -1};
    bool b;
    uint64_t class_id;
    int got;
    if (api_query_check(r, params, out) < 0 || api_query_page(r, &f.offset, &f.limit, out) < 0) {
        return;
    }
    if ((got = api_query_bool(r, "enabled", &b, out)) < 0) {
        return;
    }
    f.enabled = got ? b : -1;
    if ((got = api_query_bool(r, "may_download", &b, out)) < 0) {
        return;
    }
    f.may_download = got ? b : -1;
    if ((got = api_query_u64(r, "class_id", 0, UINT32_MAX - 1, &class_id, out)) < 0) {
        return;
    }
    f.has_class = got > 0;
    f.class_id = (uint32_t)class_id;
    const char *name = api_query_str(r, "name");
    if (name && strlen(name) > MK_NAME_MAX) {
        api_error(out, 400, "out_of_range", "name: at most %d bytes", MK_NAME_MAX);
        return;
    }
    snprintf(f.name_prefix, sizeof(f.name_prefix), "%s", name ? name : "");

    struct api_users_page page = {.a = a, .arr = json_array()};
    uint64_t total = 0;
    struct mk_errbuf eb = {{0}};
    pthread_mutex_lock(&a->mu);
    int rc = store_user_list(&a->store, &f, api_users_page_add, &page, &total, &eb);
    pthread_mutex_unlock(&a->mu);
    if (rc != 0) {
        json_decref(page.arr);
        api_store_error(out, rc, &eb, "users");
        return;
    }
    json_t *j = json_object();
    json_object_set_new(j, "users", page.arr);
    json_object_set_new(j, "total", json_integer((json_int_t)total));
    json_object_set_new(j, "offset", json_integer((json_int_t)f.offset));
    json_object_set_new(j, "limit", json_integer(f.limit));
    api_ok(out, 200, j);
}

/* Stores u, reads it back (for the effective download right) and applies
 * it; old_passkey, when not NULL and different, stops working. Called with
 * a->mu held; 0 or -1 with the answer filled. */
static int api_users_store(struct api *a, struct user_rec *u, const char *old_passkey,
                           struct api_resp *out)
{
    struct mk_errbuf eb = {{0}};
    int rc = store_user_update(&a->store, u, &eb);
    if (rc == 0) {
        rc = store_user_get(&a->store, u->row.id, u, &eb);
    }
    if (rc != 0) {
        api_store_error(out, rc, &eb, "user");
        return -1;
    }
    api_users_apply(a, u);
    if (old_passkey && strcmp(old_passkey, u->row.passkey) != 0) {
        users_remove(a->tracker->users, old_passkey, strlen(old_passkey));
    }
    api_publish(a, CHANGE_USER, u->row.id, NULL);
    return 0;
}

void api_users_update(struct api *a, const struct api_req *r, struct api_resp *out)
{
    static const char *const fields[] = {"name", "enabled", "may_download", "class_id",
                                         "upload_multiplier", "download_multiplier", NULL};
    json_t *body = api_body(r, false, fields, out);
    if (!body) {
        return;
    }
    if (json_object_size(body) == 0) {
        json_decref(body);
        api_error(out, 400, "missing_field", "body: no field to change");
        return;
    }
    struct user_rec u;
    pthread_mutex_lock(&a->mu);
    int rc = api_users_load(a, r, &u, out);
    if (rc == 0) {
        rc = api_users_read_fields(body, &u, out);
    }
    if (rc == 0) {
        rc = api_users_store(a, &u, NULL, out);
    }
    pthread_mutex_unlock(&a->mu);
    json_decref(body);
    if (rc == 0) {
        mk_log(MK_LOG_INFO, "api", "user %u changed", u.row.id);
        api_ok(out, 200, api_users_json(a, &u));
    }
}

void api_users_rotate(struct api *a, const struct api_req *r, struct api_resp *out)
{
    static const char *const fields[] = {"passkey", NULL};
    json_t *body = api_body(r, true, fields, out);
    if (!body) {
        return;
    }
    char next[MK_PASSKEY_MAX + 1] = "";
    int given = api_users_read_passkey(body, next, out);
    json_decref(body);
    if (given < 0) {
        return;
    }
    if (!given && api_random_passkey(next) != 0) {
        api_error(out, 500, "internal", "getrandom failed");
        return;
    }
    struct user_rec u;
    char old[MK_PASSKEY_MAX + 1];
    pthread_mutex_lock(&a->mu);
    int rc = api_users_load(a, r, &u, out);
    if (rc == 0) {
        snprintf(old, sizeof(old), "%s", u.row.passkey);
        snprintf(u.row.passkey, sizeof(u.row.passkey), "%s", next);
        rc = api_users_store(a, &u, old, out);
    }
    pthread_mutex_unlock(&a->mu);
    if (rc == 0) {
        mk_log(MK_LOG_INFO, "api", "user %u: passkey rotated", u.row.id);
        api_ok(out, 200, api_users_json(a, &u));
    }
}

void api_users_delete(struct api *a, const struct api_req *r, struct api_resp *out)
{
    struct user_rec u;
    uint32_t removed = 0;
    struct mk_errbuf eb = {{0}};
    pthread_mutex_lock(&a->mu);
    int rc = api_users_load(a, r, &u, out);
    if (rc == 0) {
        int src = store_user_delete(&a->store, u.row.id, &eb);
        if (src != 0) {
            api_store_error(out, src, &eb, "user");
            rc = -1;
        }
    }
    if (rc == 0) {
        users_remove(a->tracker->users, u.row.passkey, strlen(u.row.passkey));
        removed = torrents_remove_user(a->tracker->torrents, u.row.id);
        api_publish(a, CHANGE_USER, u.row.id, NULL);
    }
    pthread_mutex_unlock(&a->mu);
    if (rc != 0) {
        return;
    }
    mk_log(MK_LOG_INFO, "api", "user %u deleted, %u peers removed", u.row.id, removed);
    json_t *j = json_object();
    json_object_set_new(j, "id", json_integer(u.row.id));
    json_object_set_new(j, "deleted", json_true());
    json_object_set_new(j, "peers_removed", json_integer(removed));
    api_ok(out, 200, j);
}

struct api_users_scan {
    struct api_peer_list list;
};

static void api_users_scan_torrent(const struct torrent *tor, void *arg)
{
    struct api_users_scan *s = arg;
    api_peers_collect(&s->list, &tor->v4, tor->info_hash);
    api_peers_collect(&s->list, &tor->v6, tor->info_hash);
}

/* Scans every swarm for the user's peers, keeping at most cap of them. */
static int api_users_scan(struct api *a, uint32_t user_id, uint32_t cap,
                          struct api_peer_list *l)
{
    memset(l, 0, sizeof(*l));
    l->only_user = true;
    l->user_id = user_id;
    if (cap > 0) {
        l->rows = calloc(cap, sizeof(*l->rows));
        if (!l->rows) {
            return MK_ENOMEM;
        }
        l->cap = cap;
    }
    struct api_users_scan s = {.list = *l};
    torrents_each(a->tracker->torrents, api_users_scan_torrent, &s);
    *l = s.list;
    return 0;
}

void api_users_stats(struct api *a, const struct api_req *r, struct api_resp *out)
{
    struct user_rec u;
    pthread_mutex_lock(&a->mu);
    int rc = api_users_load(a, r, &u, out);
    pthread_mutex_unlock(&a->mu);
    if (rc != 0) {
        return;
    }
    struct api_peer_list l;
    api_users_scan(a, u.row.id, 0, &l);
    json_t *j = json_object();
    json_object_set_new(j, "id", json_integer(u.row.id));
    json_object_set_new(j, "uploaded", json_integer((json_int_t)(u.uploaded & INT64_MAX)));
    json_object_set_new(j, "downloaded", json_integer((json_int_t)(u.downloaded & INT64_MAX)));
    json_object_set_new(j, "raw_uploaded", json_integer((json_int_t)(u.raw_uploaded & INT64_MAX)));
    json_object_set_new(j, "raw_downloaded",
                        json_integer((json_int_t)(u.raw_downloaded & INT64_MAX)));
    json_object_set_new(j, "seed_time", json_integer((json_int_t)(u.seed_time & INT64_MAX)));
    json_object_set_new(j, "leech_time", json_integer((json_int_t)(u.leech_time & INT64_MAX)));
    json_object_set_new(j, "bonus_points", json_real((double)u.bonus / ACCT_POINT));
    json_object_set_new(j, "ratio", u.downloaded ? json_real((double)u.uploaded /
                                                             (double)u.downloaded)
                                                 : json_null());
    json_object_set_new(j, "snatches", json_integer(u.snatches));
    json_object_set_new(j, "seeding", json_integer((json_int_t)l.seeding));
    json_object_set_new(j, "leeching", json_integer((json_int_t)l.leeching));
    api_ok(out, 200, j);
}

void api_users_peers(struct api *a, const struct api_req *r, struct api_resp *out)
{
    static const char *const params[] = {"limit", NULL};
    uint64_t limit = API_LIMIT_DEFAULT;
    if (api_query_check(r, params, out) < 0 ||
        api_query_u64(r, "limit", 1, API_LIMIT_MAX, &limit, out) < 0) {
        return;
    }
    struct user_rec u;
    pthread_mutex_lock(&a->mu);
    int rc = api_users_load(a, r, &u, out);
    pthread_mutex_unlock(&a->mu);
    if (rc != 0) {
        return;
    }
    struct api_peer_list l;
    if (api_users_scan(a, u.row.id, (uint32_t)limit, &l) != 0) {
        api_error(out, 500, "internal", "out of memory");
        return;
    }
    api_ok(out, 200, api_peers_json(&l, tracker_now(a->tracker)));
    free(l.rows);
}

struct api_users_class_refresh {
    struct api *a;
};

static int api_users_refresh_one(const struct user_rec *u, void *arg)
{
    struct api_users_class_refresh *c = arg;
    api_users_apply(c->a, u);
    return 0;
}

int api_users_refresh_class(struct api *a, uint32_t class_id, struct mk_errbuf *eb)
{
    struct user_filter f = {.enabled = -1, .may_download = -1, .has_class = true,
                            .class_id = class_id, .limit = UINT32_MAX};
    struct api_users_class_refresh c = {.a = a};
    uint64_t total;
    return store_user_list(&a->store, &f, api_users_refresh_one, &c, &total, eb);
}

/* ---- history and hit-and-runs ----------------------------------------------- */

/* The [hnr] rule (docs/CONFIG.md): completed, the window passed, and neither
 * seeded long enough nor reached the ratio on the torrent. */
static bool api_is_hit_and_run(const struct mk_config *cfg, const struct history_row *h,
                               int64_t now)
{
    if (cfg->hnr_seed_hours == 0 || h->completed_at == 0) {
        return false;
    }
    if (now < h->completed_at + (int64_t)cfg->hnr_window_days * 86400) {
        return false;
    }
    if (h->seed_time >= (uint64_t)cfg->hnr_seed_hours * 3600) {
        return false;
    }
    uint64_t base = h->downloaded ? h->downloaded : h->size;
    if (base == 0) {
        return false; /* nothing to measure a ratio against: the time rule alone judged */
    }
    /* uploaded / base >= ratio / 1000, in integers. */
    return (unsigned __int128)h->uploaded * 1000 < (unsigned __int128)base * cfg->hnr_ratio;
}

struct api_history_page {
    const struct mk_config *cfg;
    int64_t now;
    bool hnr_only;
    json_t *arr;
};

static int api_history_add(const struct history_row *h, void *arg)
{
    struct api_history_page *p = arg;
    bool hnr = api_is_hit_and_run(p->cfg, h, p->now);
    if (p->hnr_only && !hnr) {
        return 0;
    }
    char hex[41];
    api_hex(h->info_hash, 20, hex);
    json_t *j = json_object();
    json_object_set_new(j, "info_hash", json_string(hex));
    json_object_set_new(j, "uploaded", json_integer((json_int_t)(h->uploaded & INT64_MAX)));
    json_object_set_new(j, "downloaded", json_integer((json_int_t)(h->downloaded & INT64_MAX)));
    json_object_set_new(j, "raw_uploaded", json_integer((json_int_t)(h->raw_uploaded & INT64_MAX)));
    json_object_set_new(j, "raw_downloaded",
                        json_integer((json_int_t)(h->raw_downloaded & INT64_MAX)));
    json_object_set_new(j, "seed_time", json_integer((json_int_t)(h->seed_time & INT64_MAX)));
    json_object_set_new(j, "leech_time", json_integer((json_int_t)(h->leech_time & INT64_MAX)));
    json_object_set_new(j, "announces", json_integer((json_int_t)(h->announces & INT64_MAX)));
    json_object_set_new(j, "first_announce", json_integer(h->first_announce));
    json_object_set_new(j, "last_announce", json_integer(h->last_announce));
    json_object_set_new(j, "completed_at",
                        h->completed_at ? json_integer(h->completed_at) : json_null());
    json_object_set_new(j, "hit_and_run", json_boolean(hnr));
    /* Active: announced within the time a silent peer takes to expire. */
    int64_t ttl = (int64_t)p->cfg->interval * p->cfg->expiry_factor;
    json_object_set_new(j, "active", json_boolean(p->now - h->last_announce <= ttl));
    json_array_append_new(p->arr, j);
    return 0;
}

/* GET /api/v1/users/{id}/history (every torrent the user announced on, most
 * recent first) and .../hnr (only the hit-and-runs). */
static void api_users_history_page(struct api *a, const struct api_req *r, struct api_resp *out,
                                   bool hnr_only)
{
    static const char *const params[] = {"offset", "limit", NULL};
    uint64_t offset = 0;
    uint32_t limit = 0;
    if (api_query_check(r, params, out) < 0 || api_query_page(r, &offset, &limit, out) < 0) {
        return;
    }
    struct user_rec u;
    struct api_history_page page = {.cfg = a->cfg, .now = (int64_t)time(NULL),
                                    .hnr_only = hnr_only, .arr = json_array()};
    uint64_t total = 0;
    struct mk_errbuf eb = {{0}};
    pthread_mutex_lock(&a->mu);
    int rc = api_users_load(a, r, &u, out);
    if (rc == 0) {
        /* Hit-and-runs are a filter over every row: page after judging. */
        rc = store_user_history(&a->store, u.row.id, hnr_only ? 0 : offset,
                                hnr_only ? UINT32_MAX : limit, api_history_add, &page, &total,
                                &eb);
        if (rc != 0) {
            api_store_error(out, rc, &eb, "history");
        }
    }
    pthread_mutex_unlock(&a->mu);
    if (rc != 0) {
        json_decref(page.arr);
        return;
    }
    if (hnr_only) {
        size_t n = json_array_size(page.arr);
        total = n;
        json_t *paged = json_array();
        for (size_t i = offset; i < n && json_array_size(paged) < limit; i++) {
            json_array_append(paged, json_array_get(page.arr, i));
        }
        json_decref(page.arr);
        page.arr = paged;
    }
    json_t *j = json_object();
    json_object_set_new(j, "id", json_integer(u.row.id));
    json_object_set_new(j, hnr_only ? "hit_and_runs" : "history", page.arr);
    json_object_set_new(j, "total", json_integer((json_int_t)total));
    json_object_set_new(j, "offset", json_integer((json_int_t)offset));
    json_object_set_new(j, "limit", json_integer(limit));
    api_ok(out, 200, j);
}

void api_users_history(struct api *a, const struct api_req *r, struct api_resp *out)
{
    api_users_history_page(a, r, out, false);
}

void api_users_hnr(struct api *a, const struct api_req *r, struct api_resp *out)
{
    api_users_history_page(a, r, out, true);
}

static int api_suspicious_add(const struct suspicious_row *row, void *arg)
{
    json_t *arr = arg;
    char hex[41];
    api_hex(row->info_hash, 20, hex);
    json_t *j = json_object();
    json_object_set_new(j, "info_hash", json_string(hex));
    json_object_set_new(j, "at", json_integer(row->at));
    json_object_set_new(j, "uploaded", json_integer((json_int_t)(row->uploaded & INT64_MAX)));
    json_object_set_new(j, "reason", json_string(row->reason));
    json_array_append_new(arr, j);
    return 0;
}

/* GET /api/v1/users/{id}/suspicious: uploads that were not credited. */
void api_users_suspicious(struct api *a, const struct api_req *r, struct api_resp *out)
{
    static const char *const params[] = {"offset", "limit", NULL};
    uint64_t offset = 0;
    uint32_t limit = 0;
    if (api_query_check(r, params, out) < 0 || api_query_page(r, &offset, &limit, out) < 0) {
        return;
    }
    struct user_rec u;
    json_t *arr = json_array();
    uint64_t total = 0;
    struct mk_errbuf eb = {{0}};
    pthread_mutex_lock(&a->mu);
    int rc = api_users_load(a, r, &u, out);
    if (rc == 0) {
        rc = store_user_suspicious(&a->store, u.row.id, offset, limit, api_suspicious_add, arr,
                                   &total, &eb);
        if (rc != 0) {
            api_store_error(out, rc, &eb, "suspicious");
        }
    }
    pthread_mutex_unlock(&a->mu);
    if (rc != 0) {
        json_decref(arr);
        return;
    }
    json_t *j = json_object();
    json_object_set_new(j, "id", json_integer(u.row.id));
    json_object_set_new(j, "suspicious", arr);
    json_object_set_new(j, "total", json_integer((json_int_t)total));
    json_object_set_new(j, "offset", json_integer((json_int_t)offset));
    json_object_set_new(j, "limit", json_integer(limit));
    api_ok(out, 200, j);
}

/* ---- freeleech tokens --------------------------------------------------------- */

static json_t *api_token_json(const struct token_row *t)
{
    char hex[41];
    api_hex(t->info_hash, 20, hex);
    json_t *j = json_object();
    json_object_set_new(j, "info_hash", json_string(hex));
    json_object_set_new(j, "upload_multiplier", api_mult_json(t->up_mult));
    json_object_set_new(j, "download_multiplier", api_mult_json(t->down_mult));
    json_object_set_new(j, "expires_at", t->expires ? json_integer(t->expires) : json_null());
    return j;
}

static int api_token_add(const struct token_row *row, void *arg)
{
    json_array_append_new(arg, api_token_json(row));
    return 0;
}

/* GET /api/v1/users/{id}/tokens: the user's tokens still in force. */
void api_users_tokens_list(struct api *a, const struct api_req *r, struct api_resp *out)
{
    struct user_rec u;
    json_t *arr = json_array();
    struct mk_errbuf eb = {{0}};
    pthread_mutex_lock(&a->mu);
    int rc = api_users_load(a, r, &u, out);
    if (rc == 0) {
        rc = store_load_tokens(&a->store, u.row.id, (int64_t)time(NULL), api_token_add, arr, &eb);
        if (rc != 0) {
            api_store_error(out, rc, &eb, "tokens");
        }
    }
    pthread_mutex_unlock(&a->mu);
    if (rc != 0) {
        json_decref(arr);
        return;
    }
    json_t *j = json_object();
    json_object_set_new(j, "id", json_integer(u.row.id));
    json_object_set_new(j, "tokens", arr);
    api_ok(out, 200, j);
}

/* POST /api/v1/users/{id}/tokens {info_hash, download_multiplier = 0,
 * upload_multiplier = 1, expires_at}: stored, then in force at the very next
 * announce (it replaces the user's own factors on that torrent). */
void api_users_tokens_add(struct api *a, const struct api_req *r, struct api_resp *out)
{
    static const char *const fields[] = {"info_hash", "upload_multiplier", "download_multiplier",
                                         "expires_at", NULL};
    json_t *body = api_body(r, false, fields, out);
    if (!body) {
        return;
    }
    struct token_row t = {.up_mult = 1000, .down_mult = 0};
    const char *hex = NULL;
    uint64_t expires = 0;
    int rc = 0;
    if (api_get_str(body, "info_hash", 40, false, &hex, out) < 0 ||
        api_get_mult(body, "upload_multiplier", &t.up_mult, out) < 0 ||
        api_get_mult(body, "download_multiplier", &t.down_mult, out) < 0 ||
        api_get_u64(body, "expires_at", INT64_MAX, &expires, out) < 0) {
        rc = -1;
    } else if (!hex) {
        api_error(out, 400, "missing_field", "info_hash: required");
        rc = -1;
    } else if (!api_unhex20(hex, t.info_hash)) {
        api_error(out, 400, "invalid_value", "info_hash: must be 40 hex digits");
        rc = -1;
    }
    t.expires = (int64_t)expires;
    json_decref(body);
    if (rc != 0) {
        return;
    }
    struct user_rec u;
    struct mk_errbuf eb = {{0}};
    pthread_mutex_lock(&a->mu);
    rc = api_users_load(a, r, &u, out);
    if (rc == 0) {
        t.user_id = u.row.id;
        rc = store_token_put(&a->store, &t, &eb);
        if (rc != 0) {
            api_store_error(out, rc, &eb, "torrent");
        } else {
            struct torrent_token tok = {t.user_id, t.up_mult, t.down_mult, t.expires};
            if (torrents_set_token(a->tracker->torrents, t.info_hash, &tok) != 0) {
                mk_log(MK_LOG_ERROR, "api", "token of user %u stored but not applied in memory",
                       t.user_id);
            }
            api_publish(a, CHANGE_TOKEN, t.user_id, t.info_hash);
        }
    }
    pthread_mutex_unlock(&a->mu);
    if (rc == 0) {
        api_ok(out, 201, api_token_json(&t));
    }
}

/* DELETE /api/v1/users/{id}/tokens/{info_hash}. */
void api_users_tokens_delete(struct api *a, const struct api_req *r, struct api_resp *out)
{
    uint8_t ih[20];
    if (!api_unhex20(r->params[1], ih)) {
        api_error(out, 400, "invalid_value", "info_hash: must be 40 hex digits");
        return;
    }
    struct user_rec u;
    struct mk_errbuf eb = {{0}};
    pthread_mutex_lock(&a->mu);
    int rc = api_users_load(a, r, &u, out);
    if (rc == 0) {
        struct token_row key = {.user_id = u.row.id};
        memcpy(key.info_hash, ih, 20);
        rc = store_token_delete(&a->store, &key, &eb);
        if (rc != 0) {
            api_store_error(out, rc, &eb, "token");
        } else {
            torrents_drop_token(a->tracker->torrents, ih, u.row.id);
            api_publish(a, CHANGE_TOKEN, u.row.id, ih);
        }
    }
    pthread_mutex_unlock(&a->mu);
    if (rc == 0) {
        json_t *j = json_object();
        json_object_set_new(j, "deleted", json_true());
        api_ok(out, 200, j);
    }
}
