/* api/api_admin.c: /api/v1/whitelist, /api/v1/classes and /api/v1/settings.
 *
 * Owns: the client whitelist's add and remove (the in-memory list is then
 * replaced whole from the store, as a reload would), user classes (a change
 * of may_download is re-applied to every user of the class), and the live
 * settings with the site-wide event, stored as text in the settings table.
 * Not here: users and torrents (api_users.c, api_torrents.c).
 * Invariants: stored first, then applied in memory, with a->mu held.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api_int.h"
#include "auth/whitelist.h"
#include "util/log.h"

#define API_WHITELIST_MAX 4096 /* as many as the loader at start-up takes */

/* ---- whitelist --------------------------------------------------------------- */

static json_t *api_whitelist_json(const struct whitelist_row *row)
{
    char text[3 * MK_PREFIX_MAX + 1];
    api_prefix_encode(row->prefix, row->prefix_len, text);
    return json_pack("{s:s,s:s}", "prefix", text, "name", row->name);
}

struct api_wl_rows {
    struct whitelist_row *rows;
    size_t n;
    json_t *arr; /* when listing */
};

static int api_whitelist_take(const struct whitelist_row *row, void *arg)
{
    struct api_wl_rows *w = arg;
    if (w->arr) {
        return json_array_append_new(w->arr, api_whitelist_json(row)) == 0 ? 0 : MK_ENOMEM;
    }
    if (w->n == API_WHITELIST_MAX) {
        return MK_ELIMIT;
    }
    w->rows[w->n++] = *row;
    return 0;
}

/* Replaces the in-memory list with the store's, as a reload does. */
int api_whitelist_refresh(struct api *a, struct mk_errbuf *eb)
{
    struct api_wl_rows w = {.rows = calloc(API_WHITELIST_MAX, sizeof(*w.rows))};
    if (!w.rows) {
        return mk_fail(eb, MK_ENOMEM, "out of memory");
    }
    int rc = store_load_whitelist(&a->store, api_whitelist_take, &w, eb);
    if (rc == MK_ELIMIT) {
        mk_log(MK_LOG_WARN, "api", "whitelist: more than %d prefixes, ignoring the rest",
               API_WHITELIST_MAX);
        rc = 0;
    }
    if (rc == 0) {
        rc = whitelist_replace(a->tracker->whitelist, w.rows, w.n);
    }
    free(w.rows);
    return rc;
}

void api_whitelist_list(struct api *a, const struct api_req *r, struct api_resp *out)
{
    struct api_wl_rows w = {.arr = json_array()};
    struct mk_errbuf eb = {{0}};
    pthread_mutex_lock(&a->mu);
    int rc = store_load_whitelist(&a->store, api_whitelist_take, &w, &eb);
    pthread_mutex_unlock(&a->mu);
    if (rc != 0) {
        json_decref(w.arr);
        api_store_error(out, rc, &eb, "whitelist");
        return;
    }
    api_ok(out, 200, json_pack("{s:o}", "whitelist", w.arr));
}

static int api_whitelist_prefix(const char *text, struct whitelist_row *row, struct api_resp *out)
{
    size_t len;
    if (api_prefix_decode(text, row->prefix, &len) != 0) {
        api_error(out, 400, "invalid_value",
                  "prefix: 1..%d bytes as text, %%XX (two hex digits) for any byte",
                  MK_PREFIX_MAX);
        return -1;
    }
    row->prefix_len = (uint8_t)len;
    return 0;
}

void api_whitelist_add(struct api *a, const struct api_req *r, struct api_resp *out)
{
    static const char *const fields[] = {"prefix", "name", NULL};
    json_t *body = api_body(r, false, fields, out);
    if (!body) {
        return;
    }
    const char *prefix = NULL, *name = NULL;
    struct whitelist_row row = {0};
    int gp = api_get_str(body, "prefix", 3 * MK_PREFIX_MAX, false, &prefix, out);
    int gn = gp < 0 ? -1 : api_get_str(body, "name", MK_CLIENT_NAME_MAX, false, &name, out);
    int rc = gp < 0 || gn < 0 ? -1 : 0;
    if (rc == 0 && (!gp || !gn)) {
        api_error(out, 400, "missing_field", "%s: required", gp ? "name" : "prefix");
        rc = -1;
    }
    if (rc == 0) {
        rc = api_whitelist_prefix(prefix, &row, out);
    }
    if (rc == 0) {
        snprintf(row.name, sizeof(row.name), "%s", name);
    }
    json_decref(body);
    if (rc != 0) {
        return;
    }
    struct mk_errbuf eb = {{0}};
    pthread_mutex_lock(&a->mu);
    rc = store_whitelist_insert(&a->store, &row, &eb);
    if (rc == 0 && api_whitelist_refresh(a, &eb) != 0) {
        mk_log(MK_LOG_ERROR, "api", "whitelist stored but not applied in memory: %s", eb.msg);
    }
    if (rc == 0) {
        api_publish(a, CHANGE_WHITELIST, 0, NULL);
    }
    pthread_mutex_unlock(&a->mu);
    if (rc != 0) {
        api_store_error(out, rc, &eb, "prefix");
        return;
    }
    api_ok(out, 201, api_whitelist_json(&row));
}

void api_whitelist_delete(struct api *a, const struct api_req *r, struct api_resp *out)
{
    struct whitelist_row row = {0}, removed;
    if (api_whitelist_prefix(r->params[0], &row, out) != 0) {
        return;
    }
    struct mk_errbuf eb = {{0}};
    pthread_mutex_lock(&a->mu);
    int rc = store_whitelist_delete(&a->store, row.prefix, row.prefix_len, &removed, &eb);
    if (rc == 0 && api_whitelist_refresh(a, &eb) != 0) {
        mk_log(MK_LOG_ERROR, "api", "whitelist stored but not applied in memory: %s", eb.msg);
    }
    if (rc == 0) {
        api_publish(a, CHANGE_WHITELIST, 0, NULL);
    }
    pthread_mutex_unlock(&a->mu);
    if (rc != 0) {
        api_store_error(out, rc, &eb, "prefix");
        return;
    }
    api_ok(out, 200, api_whitelist_json(&removed));
}

/* ---- classes ------------------------------------------------------------------ */

static json_t *api_class_json(const struct class_row *c)
{
    json_t *j = json_object();
    json_object_set_new(j, "id", json_integer(c->id));
    json_object_set_new(j, "name", json_string(c->name));
    json_object_set_new(j, "upload_multiplier", api_mult_json(c->up_mult));
    json_object_set_new(j, "download_multiplier", api_mult_json(c->down_mult));
    json_object_set_new(j, "may_download", json_boolean(c->may_download));
    json_object_set_new(j, "users", json_integer(c->users));
    return j;
}

static int api_class_take(const struct class_row *row, void *arg)
{
    return json_array_append_new(arg, api_class_json(row)) == 0 ? 0 : MK_ENOMEM;
}

void api_classes_list(struct api *a, const struct api_req *r, struct api_resp *out)
{
    json_t *arr = json_array();
    struct mk_errbuf eb = {{0}};
    pthread_mutex_lock(&a->mu);
    int rc = store_class_list(&a->store, api_class_take, arr, &eb);
    pthread_mutex_unlock(&a->mu);
    if (rc != 0) {
        json_decref(arr);
        api_store_error(out, rc, &eb, "classes");
        return;
    }
    api_ok(out, 200, json_pack("{s:o}", "classes", arr));
}

static int api_class_fields(json_t *body, struct class_row *c, struct api_resp *out)
{
    const char *name = NULL;
    int got = api_get_str(body, "name", MK_NAME_MAX, false, &name, out);
    if (got < 0) {
        return -1;
    }
    if (got > 0) {
        snprintf(c->name, sizeof(c->name), "%s", name);
    }
    if (api_get_mult(body, "upload_multiplier", &c->up_mult, out) < 0 ||
        api_get_mult(body, "download_multiplier", &c->down_mult, out) < 0 ||
        api_get_bool(body, "may_download", &c->may_download, out) < 0) {
        return -1;
    }
    return 0;
}

void api_classes_create(struct api *a, const struct api_req *r, struct api_resp *out)
{
    static const char *const fields[] = {"id", "name", "upload_multiplier", "download_multiplier",
                                         "may_download", NULL};
    json_t *body = api_body(r, false, fields, out);
    if (!body) {
        return;
    }
    struct class_row c = {.up_mult = MK_MULT_ONE, .down_mult = MK_MULT_ONE,
                          .may_download = true};
    int has_id = api_get_u32(body, "id", 0, UINT32_MAX - 1, &c.id, out);
    int rc = has_id < 0 ? -1 : api_class_fields(body, &c, out);
    if (rc == 0 && c.name[0] == '\0') {
        api_error(out, 400, "missing_field", "name: required");
        rc = -1;
    }
    json_decref(body);
    if (rc != 0) {
        return;
    }
    struct mk_errbuf eb = {{0}};
    pthread_mutex_lock(&a->mu);
    rc = store_class_insert(&a->store, &c, has_id > 0, &eb);
    if (rc == 0) {
        api_publish(a, CHANGE_CLASS, c.id, NULL);
    }
    pthread_mutex_unlock(&a->mu);
    if (rc != 0) {
        api_store_error(out, rc, &eb, "class");
        return;
    }
    api_ok(out, 201, api_class_json(&c));
}

static int api_class_load(struct api *a, const struct api_req *r, struct class_row *c,
                          struct api_resp *out)
{
    uint32_t id;
    if (api_param_id(r->params[0], "id", &id, out) < 0) {
        return -1;
    }
    struct mk_errbuf eb = {{0}};
    int rc = store_class_get(&a->store, id, c, &eb);
    if (rc != 0) {
        api_store_error(out, rc, &eb, "class");
        return -1;
    }
    return 0;
}

void api_classes_get(struct api *a, const struct api_req *r, struct api_resp *out)
{
    struct class_row c;
    pthread_mutex_lock(&a->mu);
    int rc = api_class_load(a, r, &c, out);
    pthread_mutex_unlock(&a->mu);
    if (rc == 0) {
        api_ok(out, 200, api_class_json(&c));
    }
}

void api_classes_update(struct api *a, const struct api_req *r, struct api_resp *out)
{
    static const char *const fields[] = {"name", "upload_multiplier", "download_multiplier",
                                         "may_download", NULL};
    json_t *body = api_body(r, false, fields, out);
    if (!body) {
        return;
    }
    if (json_object_size(body) == 0) {
        json_decref(body);
        api_error(out, 400, "missing_field", "body: no field to change");
        return;
    }
    struct class_row c = {0}; /* read below even when the load failed */
    struct mk_errbuf eb = {{0}};
    pthread_mutex_lock(&a->mu);
    int rc = api_class_load(a, r, &c, out);
    bool was = c.may_download;
    uint32_t was_up = c.up_mult, was_down = c.down_mult;
    if (rc == 0) {
        rc = api_class_fields(body, &c, out);
    }
    if (rc == 0) {
        int src = store_class_update(&a->store, &c, &eb);
        if (src != 0) {
            api_store_error(out, src, &eb, "class");
            rc = -1;
        }
    }
    /* Users' effective download right and multipliers depend on their class. */
    bool changed = was != c.may_download || was_up != c.up_mult || was_down != c.down_mult;
    if (rc == 0 && changed && api_users_refresh_class(a, c.id, &eb) != 0) {
        mk_log(MK_LOG_ERROR, "api", "class %u stored but its users not refreshed: %s", c.id,
               eb.msg);
    }
    if (rc == 0) {
        api_publish(a, CHANGE_CLASS, c.id, NULL);
    }
    pthread_mutex_unlock(&a->mu);
    json_decref(body);
    if (rc == 0) {
        api_ok(out, 200, api_class_json(&c));
    }
}

void api_classes_delete(struct api *a, const struct api_req *r, struct api_resp *out)
{
    struct class_row c;
    struct mk_errbuf eb = {{0}};
    pthread_mutex_lock(&a->mu);
    int rc = api_class_load(a, r, &c, out);
    if (rc == 0) {
        int src = store_class_delete(&a->store, c.id, &eb);
        if (src == MK_EINVAL) {
            api_error(out, 409, "conflict", "class %u is the default class: it cannot be deleted",
                      c.id);
            rc = -1;
        } else if (src == MK_EEXIST) {
            api_error(out, 409, "conflict", "class %u still has users: move them first", c.id);
            rc = -1;
        } else if (src != 0) {
            api_store_error(out, src, &eb, "class");
            rc = -1;
        }
    }
    if (rc == 0) {
        api_publish(a, CHANGE_CLASS, c.id, NULL);
    }
    pthread_mutex_unlock(&a->mu);
    if (rc == 0) {
        api_ok(out, 200, api_class_json(&c));
    }
}

/* ---- settings ---------------------------------------------------------------------- */

static const char *const api_event_names[] = {
    [API_EVENT_NONE] = "none",
    [API_EVENT_FREELEECH] = "freeleech",
    [API_EVENT_DOUBLE_UPLOAD] = "double_upload",
};

/* What the event means to the books (acct/rules.h per-mille factors). */
static void api_event_apply(struct api *a)
{
    uint32_t up = 1000, down = 1000;
    if (a->event == API_EVENT_FREELEECH) {
        down = 0;
    } else if (a->event == API_EVENT_DOUBLE_UPLOAD) {
        up = 2000;
    }
    tracker_set_event(a->tracker, up, down, a->event_ends_at);
}

static int api_event_parse(const char *s, enum api_event *out)
{
    for (size_t i = 0; i < sizeof(api_event_names) / sizeof(api_event_names[0]); i++) {
        if (strcmp(s, api_event_names[i]) == 0) {
            *out = (enum api_event)i;
            return 0;
        }
    }
    return -1;
}

static json_t *api_settings_json(struct api *a)
{
    const struct tracker_settings *live = &a->tracker->live;
    int64_t now = (int64_t)time(NULL);
    bool active = a->event != API_EVENT_NONE && (a->event_ends_at == 0 || now < a->event_ends_at);
    json_t *j = json_object();
    json_object_set_new(j, "interval", json_integer(atomic_load(&live->interval)));
    json_object_set_new(j, "min_interval", json_integer(atomic_load(&live->min_interval)));
    json_object_set_new(j, "numwant_max", json_integer(atomic_load(&live->numwant_max)));
    json_object_set_new(j, "event", json_string(api_event_names[a->event]));
    json_object_set_new(j, "event_ends_at",
                        a->event_ends_at ? json_integer(a->event_ends_at) : json_null());
    json_object_set_new(j, "event_active", json_boolean(active));
    return j;
}

void api_settings_get(struct api *a, const struct api_req *r, struct api_resp *out)
{
    pthread_mutex_lock(&a->mu);
    json_t *j = api_settings_json(a);
    pthread_mutex_unlock(&a->mu);
    api_ok(out, 200, j);
}

void api_settings_put(struct api *a, const struct api_req *r, struct api_resp *out)
{
    static const char *const fields[] = {"interval", "min_interval", "numwant_max", "event",
                                         "event_ends_at", NULL};
    json_t *body = api_body(r, false, fields, out);
    if (!body) {
        return;
    }
    pthread_mutex_lock(&a->mu);
    const struct tracker_settings *live = &a->tracker->live;
    uint32_t iv = atomic_load(&live->interval), miv = atomic_load(&live->min_interval);
    uint32_t nw = atomic_load(&live->numwant_max);
    enum api_event event = a->event;
    int64_t ends = a->event_ends_at;
    const char *ev = NULL;
    uint64_t ends_at = 0;
    json_t *jends = json_object_get(body, "event_ends_at");
    int rc = json_object_size(body) == 0 ? -1 : 0;
    if (rc != 0) {
        api_error(out, 400, "missing_field", "body: no field to change");
    }
    if (rc == 0 && (api_get_u32(body, "interval", 1, 86400, &iv, out) < 0 ||
                    api_get_u32(body, "min_interval", 1, 86400, &miv, out) < 0 ||
                    api_get_u32(body, "numwant_max", 1, a->cfg->numwant_max, &nw, out) < 0 ||
                    api_get_str(body, "event", 16, false, &ev, out) < 0)) {
        rc = -1;
    }
    if (rc == 0 && ev && api_event_parse(ev, &event) != 0) {
        api_error(out, 400, "invalid_value", "event: one of none, freeleech, double_upload");
        rc = -1;
    }
    if (rc == 0 && jends && !json_is_null(jends)) {
        if (api_get_u64(body, "event_ends_at", INT64_MAX, &ends_at, out) < 0) {
            rc = -1;
        }
        ends = (int64_t)ends_at;
    } else if (rc == 0 && jends) {
        ends = 0;
    }
    if (rc == 0 && miv > iv) {
        api_error(out, 400, "out_of_range", "min_interval: %u is above interval %u", miv, iv);
        rc = -1;
    }
    struct mk_errbuf eb = {{0}};
    if (rc == 0) {
        struct setting_row rows[5] = {{"interval", ""}, {"min_interval", ""}, {"numwant_max", ""},
                                      {"event", ""}, {"event_ends_at", ""}};
        snprintf(rows[0].value, sizeof(rows[0].value), "%u", iv);
        snprintf(rows[1].value, sizeof(rows[1].value), "%u", miv);
        snprintf(rows[2].value, sizeof(rows[2].value), "%u", nw);
        snprintf(rows[3].value, sizeof(rows[3].value), "%s", api_event_names[event]);
        snprintf(rows[4].value, sizeof(rows[4].value), "%" PRId64, ends);
        int src = store_settings_put(&a->store, rows, 5, &eb);
        if (src == 0) {
            src = tracker_set_live(a->tracker, iv, miv, nw, &eb);
        }
        if (src != 0) {
            api_store_error(out, src, &eb, "settings");
            rc = -1;
        }
    }
    if (rc == 0) {
        a->event = event;
        a->event_ends_at = ends;
        api_event_apply(a);
        api_publish(a, CHANGE_SETTINGS, 0, NULL);
        mk_log(MK_LOG_INFO, "api", "settings: interval %u, min_interval %u, numwant_max %u,"
                                   " event %s until %" PRId64,
               iv, miv, nw, api_event_names[event], ends);
    }
    json_t *j = rc == 0 ? api_settings_json(a) : NULL;
    pthread_mutex_unlock(&a->mu);
    json_decref(body);
    if (rc == 0) {
        api_ok(out, 200, j);
    }
}

struct api_settings_seen {
    uint32_t interval, min_interval, numwant_max;
    enum api_event event;
    int64_t ends;
    struct api *a;
};

static uint32_t api_settings_u32(const char *key, const char *v, uint32_t max)
{
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n == 0 || n > max) {
        mk_log(MK_LOG_WARN, "api", "stored setting %s = \"%s\" ignored (not 1..%u)", key, v, max);
        return 0;
    }
    return (uint32_t)n;
}

/* A torrent's peer selection override (api_torrents.c writes it):
 * "<strategy> <info_hash hex>". One the tracker cannot run is ignored. */
static void api_settings_selection(struct api *a, const struct setting_row *row)
{
    char name[32], hex[48];
    uint8_t ih[20];
    int kind = -1;
    if (sscanf(row->value, "%31s %47s", name, hex) == 2 && api_unhex20(hex, ih)) {
        kind = select_kind_parse(name);
    }
    if (kind < 0 || (kind != SELECT_DEFAULT && !selector_is_open(&a->tracker->selectors[kind]))) {
        mk_log(MK_LOG_WARN, "api", "stored setting %s = \"%s\" ignored", row->key, row->value);
        return;
    }
    if (torrents_set_selection(a->tracker->torrents, ih, (uint8_t)kind) != MK_OK) {
        mk_log(MK_LOG_DEBUG, "api", "stored setting %s: torrent not in memory", row->key);
    }
}

static int api_settings_take(const struct setting_row *row, void *arg)
{
    struct api_settings_seen *s = arg;
    if (strcmp(row->key, "interval") == 0) {
        s->interval = api_settings_u32(row->key, row->value, 86400);
    } else if (strcmp(row->key, "min_interval") == 0) {
        s->min_interval = api_settings_u32(row->key, row->value, 86400);
    } else if (strcmp(row->key, "numwant_max") == 0) {
        s->numwant_max = api_settings_u32(row->key, row->value, UINT32_MAX);
    } else if (strcmp(row->key, "event") == 0) {
        if (api_event_parse(row->value, &s->event) != 0) {
            mk_log(MK_LOG_WARN, "api", "stored setting event = \"%s\" ignored", row->value);
        }
    } else if (strcmp(row->key, "event_ends_at") == 0) {
        s->ends = strtoll(row->value, NULL, 10);
    } else if (strncmp(row->key, "peer_selection.", 15) == 0) {
        api_settings_selection(s->a, row);
    }
    return 0;
}

int api_settings_load(struct api *a, struct mk_errbuf *eb)
{
    struct api_settings_seen s = {.a = a};
    int rc = store_settings_load(&a->store, api_settings_take, &s, eb);
    if (rc != 0) {
        return rc;
    }
    a->event = s.event;
    a->event_ends_at = s.ends > 0 ? s.ends : 0;
    api_event_apply(a);
    if (!s.interval && !s.min_interval && !s.numwant_max) {
        return 0;
    }
    struct mk_errbuf why = {{0}};
    if (tracker_set_live(a->tracker, s.interval, s.min_interval, s.numwant_max, &why) != 0) {
        mk_log(MK_LOG_WARN, "api", "stored live settings ignored: %s", why.msg);
        return 0;
    }
    mk_log(MK_LOG_INFO, "api", "live settings from the store: interval %u, min_interval %u,"
                               " numwant_max %u",
           atomic_load(&a->tracker->live.interval), atomic_load(&a->tracker->live.min_interval),
           atomic_load(&a->tracker->live.numwant_max));
    return 0;
}
