/* api/api_torrents.c: /api/v1/torrents: register, read, list, change, delete,
 * and the peers of a swarm.
 *
 * Owns: the torrent JSON object (stored facts plus live counts), registering
 * from a .torrent upload (base64 in JSON, or the raw file), the most-active
 * listing, and copying peers out of a swarm for JSON.
 * Not here: decoding bencode (proto/metainfo.c), the SQL (store/).
 * Invariants: a change is stored, then torrents_put (and, on delete,
 * torrents_clear_peers), with a->mu held; no JSON is built and no store call
 * is made while a shard lock is held.
 */
#include <arpa/inet.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "proto/metainfo.h"
#include "swarm/torrents.h"
#include "util/log.h"

/* ---- peers ---------------------------------------------------------------- */

void api_peers_collect(struct api_peer_list *l, const struct peerset *ps,
                       const uint8_t info_hash[20])
{
    for (uint32_t i = 0; i < ps->n; i++) {
        const struct peer *p = &ps->peers[i];
        if (l->only_user && p->user_id != l->user_id) {
            continue;
        }
        bool seeder = i >= ps->nleech;
        if (seeder) {
            l->seeding++;
        } else {
            l->leeching++;
        }
        if (l->n == l->cap) {
            continue;
        }
        struct api_peer_row *row = &l->rows[l->n++];
        memcpy(row->info_hash, info_hash, 20);
        row->user_id = p->user_id;
        row->stride = ps->stride;
        memcpy(row->addr, ps->addrs + (size_t)i * ps->stride, ps->stride);
        row->seeder = seeder;
        row->partial = p->partial;
        row->uploaded = p->uploaded;
        row->downloaded = p->downloaded;
        row->last_seen = p->last_seen;
    }
}

json_t *api_peers_json(const struct api_peer_list *l, uint32_t now)
{
    json_t *arr = json_array();
    for (uint32_t i = 0; i < l->n; i++) {
        const struct api_peer_row *p = &l->rows[i];
        char hex[41], ip[INET6_ADDRSTRLEN];
        api_hex(p->info_hash, 20, hex);
        bool v6 = p->stride == PEER_COMPACT_V6;
        inet_ntop(v6 ? AF_INET6 : AF_INET, p->addr, ip, sizeof(ip));
        size_t iplen = v6 ? 16 : 4;
        json_t *j = json_object();
        json_object_set_new(j, "info_hash", json_string(hex));
        json_object_set_new(j, "user_id", json_integer(p->user_id));
        json_object_set_new(j, "ip", json_string(ip));
        json_object_set_new(j, "port", json_integer(p->addr[iplen] << 8 | p->addr[iplen + 1]));
        json_object_set_new(j, "seeder", json_boolean(p->seeder));
        json_object_set_new(j, "partial_seed", json_boolean(p->partial));
        json_object_set_new(j, "uploaded", json_integer((json_int_t)(p->uploaded & INT64_MAX)));
        json_object_set_new(j, "downloaded",
                            json_integer((json_int_t)(p->downloaded & INT64_MAX)));
        json_object_set_new(j, "last_seen_seconds_ago",
                            json_integer(now > p->last_seen ? now - p->last_seen : 0));
        json_array_append_new(arr, j);
    }
    return json_pack("{s:o}", "peers", arr);
}

/* ---- the torrent object ------------------------------------------------------ */

struct api_live {
    bool found;
    uint64_t seeders, leechers;
    uint32_t snatches;
    uint8_t selection; /* enum select_kind */
};

static void api_torrents_live(struct api *a, const uint8_t ih[20], struct api_live *l)
{
    struct torrent_shard *s;
    const struct torrent *tor = torrents_lock(a->tracker->torrents, ih, &s);
    memset(l, 0, sizeof(*l));
    if (tor) {
        l->found = true;
        l->seeders = (uint64_t)peerset_seeders(&tor->v4) + peerset_seeders(&tor->v6);
        l->leechers = (uint64_t)peerset_leechers(&tor->v4) + peerset_leechers(&tor->v6);
        l->snatches = tor->snatches;
        l->selection = tor->selection;
    }
    torrents_unlock(s);
}

static json_t *api_torrents_json(struct api *a, const struct torrent_rec *t)
{
    struct api_live live;
    api_torrents_live(a, t->row.info_hash, &live);
    char hex[41];
    api_hex(t->row.info_hash, 20, hex);
    uint32_t snatches = live.snatches > t->row.snatches ? live.snatches : t->row.snatches;
    json_t *j = json_object();
    json_object_set_new(j, "id", json_integer(t->row.id));
    json_object_set_new(j, "info_hash", json_string(hex));
    json_object_set_new(j, "name", t->name[0] ? json_string(t->name) : json_null());
    json_object_set_new(j, "size", t->has_size ? json_integer((json_int_t)(t->size & INT64_MAX))
                                               : json_null());
    json_object_set_new(j, "enabled", json_boolean(t->row.enabled));
    json_object_set_new(j, "deleted", json_boolean(t->row.deleted));
    json_object_set_new(j, "reason", json_string(t->row.reason));
    json_object_set_new(j, "freeleech", json_boolean(t->freeleech));
    json_object_set_new(j, "upload_multiplier", api_mult_json(t->up_mult));
    json_object_set_new(j, "download_multiplier", api_mult_json(t->down_mult));
    json_object_set_new(j, "seeders", json_integer((json_int_t)live.seeders));
    json_object_set_new(j, "leechers", json_integer((json_int_t)live.leechers));
    json_object_set_new(j, "snatches", json_integer(snatches));
    json_object_set_new(j, "peer_selection",
                        json_string(select_kind_name((enum select_kind)live.selection)));
    json_object_set_new(j, "transferred",
                        json_integer((json_int_t)(t->transferred & INT64_MAX)));
    json_object_set_new(j, "created_at", json_integer(t->created_at));
    return j;
}

void api_torrents_apply(struct api *a, const struct torrent_rec *t)
{
    /* The announce path books with these: they go to memory with the row. */
    struct torrent_row row = t->row;
    row.has_mults = true;
    row.freeleech = t->freeleech;
    row.up_mult = t->up_mult;
    row.down_mult = t->down_mult;
    row.size = t->has_size ? t->size : 0;
    int rc = torrents_put(a->tracker->torrents, &row, atomic_load(a->generation));
    if (rc != 0) {
        mk_log(MK_LOG_ERROR, "api", "torrent %u stored but not applied in memory: %s", t->row.id,
               mk_err_name(rc));
    }
}

/* ---- register ------------------------------------------------------------------ */

static int api_b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* RFC 4648 base64, padding optional, line breaks ignored; out has room for
 * len * 3 / 4 bytes. The decoded length, or -1. */
static long api_base64_decode(const char *s, size_t len, uint8_t *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0, pad = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' || c == '\n') {
            continue;
        }
        if (c == '=') {
            pad++;
            continue;
        }
        int v = api_b64val(c);
        if (v < 0 || pad > 0) {
            return -1;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    /* Leftover bits must be padding zeros, and at most two '='. */
    if (pad > 2 || bits >= 6 || (acc & ((1u << bits) - 1)) != 0) {
        return -1;
    }
    return (long)n;
}

/* A name we can store and show: no control characters, valid UTF-8. */
static bool api_torrents_name_ok(const char *p, size_t len)
{
    if (len == 0 || len > MK_TORRENT_NAME_MAX) {
        return false;
    }
    json_t *probe = json_stringn(p, len); /* NULL unless valid UTF-8 without NUL */
    bool ok = probe != NULL;
    json_decref(probe);
    for (size_t i = 0; ok && i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        ok = c >= 0x20 && c != 0x7f;
    }
    return ok;
}

/* Fills t from a .torrent file; -1 with the answer filled. */
static int api_torrents_from_file(const uint8_t *buf, size_t len, struct torrent_rec *t,
                                  json_t *warnings, bool *is_private, struct api_resp *out)
{
    struct metainfo m;
    struct mk_errbuf eb = {{0}};
    if (metainfo_parse(buf, len, &m, &eb) != 0) {
        api_error(out, 400, "invalid_value", "torrent: %s", eb.msg);
        return -1;
    }
    int rc = gnutls_hash_fast(GNUTLS_DIG_SHA1, m.info.p, m.info.len, t->row.info_hash);
    if (rc < 0) {
        api_error(out, 500, "internal", "sha1: %s", gnutls_strerror(rc));
        return -1;
    }
    if (api_torrents_name_ok(m.name.p, m.name.len)) {
        memcpy(t->name, m.name.p, m.name.len);
        t->name[m.name.len] = '\0';
    } else {
        json_array_append_new(warnings, json_string("the torrent's name is empty, too long or not"
                                                    " UTF-8 text: not stored"));
    }
    t->has_size = true;
    t->size = m.total_length;
    *is_private = m.is_private;
    if (!m.is_private) {
        json_array_append_new(warnings,
                              json_string(m.has_private
                                              ? "torrent is not private (private is 0): clients"
                                                " may find peers through DHT and PEX"
                                              : "torrent is not private (no private flag): clients"
                                                " may find peers through DHT and PEX"));
    }
    return 0;
}

static const char *const api_torrent_fields[] = {
    "info_hash", "torrent_base64", "name",    "size", "enabled", "freeleech",
    "upload_multiplier", "download_multiplier", NULL};

/* The JSON form of a registration; -1 with the answer filled. */
static int api_torrents_from_json(const struct api_req *r, struct torrent_rec *t,
                                  json_t *warnings, bool *from_file, bool *is_private,
                                  struct api_resp *out)
{
    json_t *body = api_body(r, false, api_torrent_fields, out);
    if (!body) {
        return -1;
    }
    const char *hex = NULL, *b64 = NULL, *name = NULL;
    int rc = 0;
    int has_hex = api_get_str(body, "info_hash", 40, false, &hex, out);
    int has_b64 = has_hex < 0 ? -1 : api_get_str(body, "torrent_base64", SIZE_MAX, false, &b64,
                                                   out);
    if (has_b64 < 0) {
        rc = -1;
    } else if (has_hex == has_b64) {
        api_error(out, 400, has_hex ? "invalid_value" : "missing_field",
                  "info_hash or torrent_base64: give exactly one");
        rc = -1;
    } else if (has_hex && !api_unhex20(hex, t->row.info_hash)) {
        api_error(out, 400, "invalid_value", "info_hash: must be 40 hex digits");
        rc = -1;
    } else if (has_b64) {
        size_t len = strlen(b64);
        uint8_t *buf = malloc(len / 4 * 3 + 3);
        long n = buf ? api_base64_decode(b64, len, buf) : -1;
        if (!buf) {
            api_error(out, 500, "internal", "out of memory");
            rc = -1;
        } else if (n < 0) {
            api_error(out, 400, "invalid_value", "torrent_base64: not base64");
            rc = -1;
        } else {
            *from_file = true;
            rc = api_torrents_from_file(buf, (size_t)n, t, warnings, is_private, out);
        }
        free(buf);
    }
    int got = 0;
    if (rc == 0) {
        got = api_get_str(body, "name", MK_TORRENT_NAME_MAX, true, &name, out);
        rc = got < 0 ? -1 : 0;
    }
    if (rc == 0 && got > 0) {
        snprintf(t->name, sizeof(t->name), "%s", name ? name : "");
    }
    if (rc == 0 && (got = api_get_u64(body, "size", INT64_MAX, &t->size, out)) < 0) {
        rc = -1;
    }
    if (rc == 0 && got > 0) {
        t->has_size = true;
    }
    if (rc == 0 && (api_get_bool(body, "enabled", &t->row.enabled, out) < 0 ||
                    api_get_bool(body, "freeleech", &t->freeleech, out) < 0 ||
                    api_get_mult(body, "upload_multiplier", &t->up_mult, out) < 0 ||
                    api_get_mult(body, "download_multiplier", &t->down_mult, out) < 0)) {
        rc = -1;
    }
    json_decref(body);
    return rc;
}

static bool api_is_bittorrent(const char *ctype)
{
    return ctype && strncasecmp(ctype, "application/x-bittorrent", 24) == 0 &&
           (ctype[24] == '\0' || ctype[24] == ';' || ctype[24] == ' ');
}

void api_torrents_create(struct api *a, const struct api_req *r, struct api_resp *out)
{
    struct torrent_rec t = {.row = {.enabled = true}, .up_mult = MK_MULT_ONE,
                            .down_mult = MK_MULT_ONE};
    json_t *warnings = json_array();
    bool from_file = false, is_private = false;
    int rc;
    if (api_is_bittorrent(r->content_type)) {
        from_file = true;
        rc = api_torrents_from_file((const uint8_t *)r->body, r->len, &t, warnings, &is_private,
                                    out);
    } else {
        rc = api_torrents_from_json(r, &t, warnings, &from_file, &is_private, out);
    }
    if (rc != 0) {
        json_decref(warnings);
        return;
    }
    struct mk_errbuf eb = {{0}};
    pthread_mutex_lock(&a->mu);
    rc = store_torrent_insert(&a->store, &t, &eb);
    if (rc == 0) {
        api_torrents_apply(a, &t);
        api_publish(a, CHANGE_TORRENT, 0, t.row.info_hash);
    }
    pthread_mutex_unlock(&a->mu);
    if (rc != 0) {
        json_decref(warnings);
        api_store_error(out, rc, &eb, "torrent");
        return;
    }
    char hex[41];
    api_hex(t.row.info_hash, 20, hex);
    mk_log(MK_LOG_INFO, "api", "torrent %u registered (%s)", t.row.id, hex);
    json_t *j = api_torrents_json(a, &t);
    if (from_file) {
        json_object_set_new(j, "private", json_boolean(is_private));
    }
    json_object_set_new(j, "warnings", warnings);
    api_ok(out, 201, j);
}

/* Reads torrent params[0]; -1 with the answer filled. Call with a->mu held. */
static int api_torrents_load(struct api *a, const struct api_req *r, struct torrent_rec *t,
                             struct api_resp *out)
{
    uint8_t ih[20];
    if (!api_unhex20(r->params[0], ih)) {
        api_error(out, 400, "invalid_value", "info_hash: must be 40 hex digits");
        return -1;
    }
    struct mk_errbuf eb = {{0}};
    int rc = store_torrent_get(&a->store, ih, t, &eb);
    if (rc != 0) {
        api_store_error(out, rc, &eb, "torrent");
        return -1;
    }
    return 0;
}

void api_torrents_get(struct api *a, const struct api_req *r, struct api_resp *out)
{
    struct torrent_rec t;
    pthread_mutex_lock(&a->mu);
    int rc = api_torrents_load(a, r, &t, out);
    pthread_mutex_unlock(&a->mu);
    if (rc == 0) {
        api_ok(out, 200, api_torrents_json(a, &t));
    }
}

/* Stores t and applies it; with a->mu held. 0 or -1 with the answer filled. */
static int api_torrents_store(struct api *a, struct torrent_rec *t, struct api_resp *out)
{
    struct mk_errbuf eb = {{0}};
    int rc = store_torrent_update(&a->store, t, &eb);
    if (rc != 0) {
        api_store_error(out, rc, &eb, "torrent");
        return -1;
    }
    api_torrents_apply(a, t);
    api_publish(a, CHANGE_TORRENT, 0, t->row.info_hash);
    return 0;
}

/* The strategy named, if this tracker can run it; else -1 and a 400. */
static int api_torrents_selection_check(struct api *a, const char *name, struct api_resp *out)
{
    int kind = select_kind_parse(name);
    if (kind < 0) {
        api_error(out, 400, "invalid_value",
                  "peer_selection: one of default, random, seeders-first, nearest, same-network");
        return -1;
    }
    if (kind != SELECT_DEFAULT && !selector_is_open(&a->tracker->selectors[kind])) {
        api_error(out, 400, "invalid_value",
                  "peer_selection: %s is not available on this tracker (nearest needs"
                  " tracker.geoip_city_db, same-network tracker.geoip_asn_db;"
                  " docs/PEER_SELECTION.md)",
                  name);
        return -1;
    }
    return kind;
}

/* The override lives in memory (struct torrent) and, to outlive a restart,
 * in the settings store as "peer_selection.<id>" = "<strategy> <info_hash
 * hex>": no torrents table of the four backends needs a new column. */
static int api_torrents_set_selection(struct api *a, const struct torrent_rec *t,
                                      enum select_kind kind, struct api_resp *out)
{
    struct setting_row row;
    char hex[41];
    api_hex(t->row.info_hash, 20, hex);
    snprintf(row.key, sizeof(row.key), "peer_selection.%u", t->row.id);
    snprintf(row.value, sizeof(row.value), "%s %s", select_kind_name(kind), hex);
    struct mk_errbuf eb = {{0}};
    int rc = store_settings_put(&a->store, &row, 1, &eb);
    if (rc != 0) {
        api_store_error(out, rc, &eb, "settings");
        return -1;
    }
    (void)torrents_set_selection(a->tracker->torrents, t->row.info_hash, (uint8_t)kind);
    api_publish(a, CHANGE_SETTINGS, 0, NULL);
    mk_log(MK_LOG_INFO, "api", "torrent %u: peer_selection %s", t->row.id, select_kind_name(kind));
    return 0;
}

void api_torrents_update(struct api *a, const struct api_req *r, struct api_resp *out)
{
    static const char *const fields[] = {"name",     "enabled",        "freeleech",
                                         "upload_multiplier", "download_multiplier",
                                         "deleted",  "peer_selection", NULL};
    json_t *body = api_body(r, false, fields, out);
    if (!body) {
        return;
    }
    struct torrent_rec t;
    const char *name = NULL;
    const char *selection = NULL;
    bool deleted = true;
    int got_name = 0, got_deleted = 0, got_selection = 0;
    int kind = SELECT_DEFAULT;
    int rc = 0;
    if (json_object_size(body) == 0) {
        api_error(out, 400, "missing_field", "body: no field to change");
        rc = -1;
    }
    if (rc == 0 && ((got_name = api_get_str(body, "name", MK_TORRENT_NAME_MAX, true, &name,
                                            out)) < 0 ||
                    (got_deleted = api_get_bool(body, "deleted", &deleted, out)) < 0)) {
        rc = -1;
    }
    if (rc == 0 && got_deleted && deleted) {
        api_error(out, 400, "invalid_value", "deleted: only false (use DELETE to delete)");
        rc = -1;
    }
    if (rc == 0 && (got_selection = api_get_str(body, "peer_selection", 16, false, &selection,
                                                out)) < 0) {
        rc = -1;
    }
    if (rc == 0 && got_selection && (kind = api_torrents_selection_check(a, selection, out)) < 0) {
        rc = -1;
    }
    pthread_mutex_lock(&a->mu);
    if (rc == 0) {
        rc = api_torrents_load(a, r, &t, out);
    }
    if (rc == 0 && (api_get_bool(body, "enabled", &t.row.enabled, out) < 0 ||
                    api_get_bool(body, "freeleech", &t.freeleech, out) < 0 ||
                    api_get_mult(body, "upload_multiplier", &t.up_mult, out) < 0 ||
                    api_get_mult(body, "download_multiplier", &t.down_mult, out) < 0)) {
        rc = -1;
    }
    if (rc == 0) {
        if (got_name) {
            snprintf(t.name, sizeof(t.name), "%s", name ? name : "");
        }
        if (got_deleted) {
            t.row.deleted = false;
            t.row.reason[0] = '\0';
        }
        rc = api_torrents_store(a, &t, out);
    }
    if (rc == 0 && got_selection) {
        rc = api_torrents_set_selection(a, &t, (enum select_kind)kind, out);
    }
    pthread_mutex_unlock(&a->mu);
    json_decref(body);
    if (rc == 0) {
        api_ok(out, 200, api_torrents_json(a, &t));
    }
}

void api_torrents_delete(struct api *a, const struct api_req *r, struct api_resp *out)
{
    static const char *const params[] = {"reason", NULL};
    static const char *const fields[] = {"reason", NULL};
    if (api_query_check(r, params, out) < 0) {
        return;
    }
    json_t *body = api_body(r, true, fields, out);
    if (!body) {
        return;
    }
    const char *reason = api_query_str(r, "reason");
    int got = api_get_str(body, "reason", MK_REASON_MAX, false, &reason, out);
    int rc = got < 0 ? -1 : 0;
    if (rc == 0 && reason) {
        size_t len = strlen(reason);
        bool ok = len <= MK_REASON_MAX;
        for (size_t i = 0; ok && i < len; i++) {
            ok = (unsigned char)reason[i] >= 0x20 && reason[i] != 0x7f;
        }
        if (!ok) {
            api_error(out, 400, "invalid_value",
                      "reason: at most %d bytes, no control characters", MK_REASON_MAX);
            rc = -1;
        }
    }
    struct torrent_rec t;
    uint32_t removed = 0;
    pthread_mutex_lock(&a->mu);
    if (rc == 0) {
        rc = api_torrents_load(a, r, &t, out);
    }
    if (rc == 0) {
        t.row.deleted = true;
        snprintf(t.row.reason, sizeof(t.row.reason), "%s", reason ? reason : "");
        rc = api_torrents_store(a, &t, out);
    }
    if (rc == 0) {
        removed = torrents_clear_peers(a->tracker->torrents, t.row.info_hash);
    }
    pthread_mutex_unlock(&a->mu);
    json_decref(body);
    if (rc == 0) {
        mk_log(MK_LOG_INFO, "api", "torrent %u deleted, %u peers removed", t.row.id, removed);
        api_ok(out, 200, api_torrents_json(a, &t));
    }
}

void api_torrents_peers(struct api *a, const struct api_req *r, struct api_resp *out)
{
    static const char *const params[] = {"limit", NULL};
    uint64_t limit = API_LIMIT_DEFAULT;
    if (api_query_check(r, params, out) < 0 ||
        api_query_u64(r, "limit", 1, API_LIMIT_MAX, &limit, out) < 0) {
        return;
    }
    struct torrent_rec t;
    pthread_mutex_lock(&a->mu);
    int rc = api_torrents_load(a, r, &t, out);
    pthread_mutex_unlock(&a->mu);
    if (rc != 0) {
        return;
    }
    struct api_peer_list l = {.cap = (uint32_t)limit};
    l.rows = calloc(l.cap, sizeof(*l.rows));
    if (!l.rows) {
        api_error(out, 500, "internal", "out of memory");
        return;
    }
    struct torrent_shard *s;
    const struct torrent *tor = torrents_lock(a->tracker->torrents, t.row.info_hash, &s);
    if (tor) {
        api_peers_collect(&l, &tor->v4, tor->info_hash);
        api_peers_collect(&l, &tor->v6, tor->info_hash);
    }
    torrents_unlock(s);
    api_ok(out, 200, api_peers_json(&l, tracker_now(a->tracker)));
    free(l.rows);
}

/* ---- list, most active first --------------------------------------------------- */

struct api_tor_sum {
    uint8_t info_hash[20];
    uint32_t id;
    uint32_t snatches;
    uint64_t seeders, leechers;
};

enum api_sort { API_SORT_ACTIVE, API_SORT_SEEDERS, API_SORT_LEECHERS, API_SORT_SNATCHES,
                API_SORT_ID };

struct api_tor_scan {
    struct api_tor_sum *rows;
    size_t n, cap;
    size_t seen;
    bool deleted;
};

static void api_tor_count(const struct torrent *tor, void *arg)
{
    struct api_tor_scan *s = arg;
    s->seen++;
}

static void api_tor_collect(const struct torrent *tor, void *arg)
{
    struct api_tor_scan *s = arg;
    if (tor->deleted != s->deleted || s->n == s->cap) {
        return;
    }
    struct api_tor_sum *r = &s->rows[s->n++];
    memcpy(r->info_hash, tor->info_hash, 20);
    r->id = tor->id;
    r->snatches = tor->snatches;
    r->seeders = (uint64_t)peerset_seeders(&tor->v4) + peerset_seeders(&tor->v6);
    r->leechers = (uint64_t)peerset_leechers(&tor->v4) + peerset_leechers(&tor->v6);
}

static uint64_t api_sort_value(const struct api_tor_sum *r, enum api_sort key)
{
    switch (key) {
    case API_SORT_ACTIVE:
        return r->seeders + r->leechers;
    case API_SORT_SEEDERS:
        return r->seeders;
    case API_SORT_LEECHERS:
        return r->leechers;
    case API_SORT_SNATCHES:
        return r->snatches;
    case API_SORT_ID:
        break;
    }
    return 0;
}

/* Descending by the key, then ascending by id: a stable order for paging. */
static int api_tor_cmp(const void *x, const void *y, void *arg)
{
    const struct api_tor_sum *a = x, *b = y;
    enum api_sort key = *(const enum api_sort *)arg;
    uint64_t va = api_sort_value(a, key), vb = api_sort_value(b, key);
    if (va != vb) {
        return va > vb ? -1 : 1;
    }
    return a->id < b->id ? -1 : a->id > b->id;
}

void api_torrents_list(struct api *a, const struct api_req *r, struct api_resp *out)
{
    static const char *const params[] = {"offset", "limit", "sort", "deleted", NULL};
    static const char *const sorts[] = {"active", "seeders", "leechers", "snatches", "id"};
    uint64_t offset;
    uint32_t limit;
    bool deleted = false;
    if (api_query_check(r, params, out) < 0 || api_query_page(r, &offset, &limit, out) < 0 ||
        api_query_bool(r, "deleted", &deleted, out) < 0) {
        return;
    }
    enum api_sort sort = API_SORT_ACTIVE;
    const char *sort_name = api_query_str(r, "sort");
    if (sort_name) {
        size_t i = 0;
        while (i < sizeof(sorts) / sizeof(sorts[0]) && strcmp(sorts[i], sort_name) != 0) {
            i++;
        }
        if (i == sizeof(sorts) / sizeof(sorts[0])) {
            api_error(out, 400, "invalid_value",
                      "sort: one of active, seeders, leechers, snatches, id");
            return;
        }
        sort = (enum api_sort)i;
    }
    /* Count first, so the copy pass never allocates under a shard lock. */
    struct api_tor_scan scan = {.deleted = deleted};
    torrents_each(a->tracker->torrents, api_tor_count, &scan);
    scan.cap = scan.seen + 64; /* room for a few registered meanwhile */
    scan.rows = calloc(scan.cap, sizeof(*scan.rows));
    if (!scan.rows) {
        api_error(out, 500, "internal", "out of memory");
        return;
    }
    torrents_each(a->tracker->torrents, api_tor_collect, &scan);
    qsort_r(scan.rows, scan.n, sizeof(*scan.rows), api_tor_cmp, &sort);

    json_t *arr = json_array();
    pthread_mutex_lock(&a->mu);
    for (uint64_t i = offset; i < scan.n && i < offset + limit; i++) {
        struct torrent_rec t;
        struct mk_errbuf eb = {{0}};
        if (store_torrent_get(&a->store, scan.rows[i].info_hash, &t, &eb) != 0) {
            /* In memory but gone from the store (removed by hand): the
             * facts memory has are all there is. */
            memset(&t, 0, sizeof(t));
            memcpy(t.row.info_hash, scan.rows[i].info_hash, 20);
            t.row.id = scan.rows[i].id;
            t.row.deleted = deleted;
            t.up_mult = t.down_mult = MK_MULT_ONE;
        }
        json_array_append_new(arr, api_torrents_json(a, &t));
    }
    pthread_mutex_unlock(&a->mu);
    json_t *j = json_object();
    json_object_set_new(j, "torrents", arr);
    json_object_set_new(j, "total", json_integer((json_int_t)scan.n));
    json_object_set_new(j, "offset", json_integer((json_int_t)offset));
    json_object_set_new(j, "limit", json_integer(limit));
    free(scan.rows);
    api_ok(out, 200, j);
}
