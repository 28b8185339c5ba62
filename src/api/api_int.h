/* api/api_int.h: what the admin API's files share; nobody else includes it.
 *
 * Owns: struct api (the server's state), the request and answer shapes the
 * route handlers see, the handlers' prototypes (api_users.c, api_torrents.c,
 * api_admin.c, api_stats.c) and the JSON helpers of api_reply.c.
 * Invariants: a handler always fills its answer; store calls and the memory
 * updates that follow them happen with a->mu held, so two API writes to the
 * same object apply in memory in the order they were stored.
 */
#ifndef MIKA_API_API_INT_H
#define MIKA_API_API_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "api/api.h"
#include "api/api_tls.h"
#include "cluster/change.h"
#include "store/store.h"
#include "swarm/peers.h"

struct MHD_Daemon;
struct MHD_Connection;

#define API_PATH_PARAMS 2
#define API_PARAM_MAX 256
#define API_LIMIT_DEFAULT 100
#define API_LIMIT_MAX 1000
#define API_RATE_WINDOW 10 /* seconds the per-second rates average over */

enum api_event { API_EVENT_NONE, API_EVENT_FREELEECH, API_EVENT_DOUBLE_UPLOAD };

/* Cumulative tracker counters sampled once a second, for the rates. */
struct api_sample {
    int64_t at;          /* monotonic seconds */
    uint64_t announces;
    uint64_t scrapes;
};

struct api {
    const struct mk_config *cfg;
    struct tracker *tracker;
    const _Atomic uint32_t *generation;
    struct changes *changes;       /* NULL: a single node, nobody to tell */
    struct store store;            /* the API's own connection; used with mu held */
    pthread_mutex_t mu;
    struct api_tls tls;
    struct MHD_Daemon *mhd;
    char announce_base[320];       /* "https://host[:port]", no trailing '/' */
    struct timespec started;       /* CLOCK_MONOTONIC */
    _Atomic uint64_t requests;

    /* The site-wide event (settings), stored; accounting applies it later. */
    enum api_event event;          /* with mu held */
    int64_t event_ends_at;         /* unix seconds, 0 = no end */

    /* Rates: a sampler thread records the counters every second. */
    pthread_t sampler;
    bool sampler_running;
    pthread_mutex_t sample_mu;
    pthread_cond_t sample_cv;
    bool stopping;
    struct api_sample samples[API_RATE_WINDOW + 1];
    unsigned nsamples, next_sample;
};

enum api_method { API_GET, API_POST, API_PUT, API_PATCH, API_DELETE, API_OTHER };

struct api_req {
    enum api_method method;
    struct MHD_Connection *conn;
    const char *body;              /* NUL-terminated copy; len bytes */
    size_t len;
    const char *content_type;      /* NULL when absent */
    char params[API_PATH_PARAMS][API_PARAM_MAX]; /* path captures, URL-decoded */
};

struct api_resp {
    int status;
    json_t *json;                  /* owned */
    char *text;                    /* owned; a text/plain body instead of json */
    char allow[64];                /* Allow header of a 405 */
};

typedef void (*api_handler)(struct api *a, const struct api_req *r, struct api_resp *out);

/* ---- api_reply.c --------------------------------------------------------- */

void api_error(struct api_resp *out, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 200/201 with obj (ownership taken; NULL becomes a 500). */
void api_ok(struct api_resp *out, int status, json_t *obj);
/* Maps a store error: ENOTFOUND 404 ("<what> not found", or the field the
 * store named), EEXIST 409, EUNAVAIL 503, EINVAL 400, else 500. */
void api_store_error(struct api_resp *out, int rc, const struct mk_errbuf *eb, const char *what);

/* The body as a JSON object whose keys are all in fields (NULL-terminated).
 * An empty body is {} when allow_empty. NULL with out filled on error. */
json_t *api_body(const struct api_req *r, bool allow_empty, const char *const *fields,
                 struct api_resp *out);

/* Typed fields: 1 present and valid, 0 absent (out untouched), -1 invalid
 * (the answer is filled, naming the field). */
int api_get_bool(json_t *o, const char *key, bool *val, struct api_resp *out);
int api_get_u32(json_t *o, const char *key, uint32_t min, uint32_t max, uint32_t *val,
                struct api_resp *out);
int api_get_u64(json_t *o, const char *key, uint64_t max, uint64_t *val, struct api_resp *out);
int api_get_mult(json_t *o, const char *key, uint32_t *val, struct api_resp *out);
/* A string of 1..max bytes without control characters; with nullable, JSON
 * null gives *val = NULL. */
int api_get_str(json_t *o, const char *key, size_t max, bool nullable, const char **val,
                struct api_resp *out);

/* Query parameters: every one must be in allowed (NULL-terminated). */
int api_query_check(const struct api_req *r, const char *const *allowed, struct api_resp *out);
/* 1 present and valid, 0 absent, -1 invalid (answer filled). */
int api_query_u64(const struct api_req *r, const char *key, uint64_t min, uint64_t max,
                  uint64_t *val, struct api_resp *out);
int api_query_bool(const struct api_req *r, const char *key, bool *val, struct api_resp *out);
const char *api_query_str(const struct api_req *r, const char *key);
/* offset and limit with their defaults and bounds. */
int api_query_page(const struct api_req *r, uint64_t *offset, uint32_t *limit,
                   struct api_resp *out);

/* The id path parameter: 0..UINT32_MAX-1, else a 400 naming `what`. */
int api_param_id(const char *s, const char *what, uint32_t *id, struct api_resp *out);

json_t *api_mult_json(uint32_t m);
void api_hex(const uint8_t *b, size_t n, char *out); /* out: 2n + 1 */
bool api_unhex20(const char *s, uint8_t out[20]);
bool api_passkey_ok(const char *s);
int api_random_passkey(char out[33]);
/* Whitelist prefixes as text: printable ASCII but '%' as itself, %XX for
 * any byte. decode: 0 or -1 (bad escape, empty, over MK_PREFIX_MAX bytes). */
int api_prefix_decode(const char *text, uint8_t out[MK_PREFIX_MAX], size_t *len);
void api_prefix_encode(const uint8_t *p, size_t len, char out[3 * MK_PREFIX_MAX + 1]);

/* Serialises the answer body: JSON compact, reals with at most 9 digits. */
char *api_dump(json_t *j);

/* ---- handlers ------------------------------------------------------------ */

void api_users_list(struct api *a, const struct api_req *r, struct api_resp *out);
void api_users_create(struct api *a, const struct api_req *r, struct api_resp *out);
void api_users_get(struct api *a, const struct api_req *r, struct api_resp *out);
void api_users_get_by_passkey(struct api *a, const struct api_req *r, struct api_resp *out);
void api_users_update(struct api *a, const struct api_req *r, struct api_resp *out);
void api_users_delete(struct api *a, const struct api_req *r, struct api_resp *out);
void api_users_rotate(struct api *a, const struct api_req *r, struct api_resp *out);
void api_users_stats(struct api *a, const struct api_req *r, struct api_resp *out);
void api_users_history(struct api *a, const struct api_req *r, struct api_resp *out);
void api_users_hnr(struct api *a, const struct api_req *r, struct api_resp *out);
void api_users_suspicious(struct api *a, const struct api_req *r, struct api_resp *out);
void api_users_tokens_list(struct api *a, const struct api_req *r, struct api_resp *out);
void api_users_tokens_add(struct api *a, const struct api_req *r, struct api_resp *out);
void api_users_tokens_delete(struct api *a, const struct api_req *r, struct api_resp *out);
void api_users_peers(struct api *a, const struct api_req *r, struct api_resp *out);
/* Re-applies the effective download right of every user of a class. */
int api_users_refresh_class(struct api *a, uint32_t class_id, struct mk_errbuf *eb);
/* Puts a stored user into memory with its class's multipliers (a->mu held). */
void api_users_apply(struct api *a, const struct user_rec *u);
/* Puts a stored torrent into memory (a->mu held). */
void api_torrents_apply(struct api *a, const struct torrent_rec *t);
/* Replaces the in-memory whitelist with the store's (a->mu held). */
int api_whitelist_refresh(struct api *a, struct mk_errbuf *eb);

/* ---- cluster notices (api_changes.c) ------------------------------------------- */

/* Tells the other nodes of a cluster what a stored change touched (id: user
 * or class; info_hash: torrent or token; NULL when none). A no-op on a single
 * node; a failure is logged and counted, never answered: the other nodes
 * catch up at their next reload. Called after the store write succeeded. */
void api_publish(struct api *a, enum change_kind kind, uint32_t id, const uint8_t *info_hash);

void api_torrents_list(struct api *a, const struct api_req *r, struct api_resp *out);
void api_torrents_create(struct api *a, const struct api_req *r, struct api_resp *out);
void api_torrents_get(struct api *a, const struct api_req *r, struct api_resp *out);
void api_torrents_update(struct api *a, const struct api_req *r, struct api_resp *out);
void api_torrents_delete(struct api *a, const struct api_req *r, struct api_resp *out);
void api_torrents_peers(struct api *a, const struct api_req *r, struct api_resp *out);

void api_whitelist_list(struct api *a, const struct api_req *r, struct api_resp *out);
void api_whitelist_add(struct api *a, const struct api_req *r, struct api_resp *out);
void api_whitelist_delete(struct api *a, const struct api_req *r, struct api_resp *out);
void api_classes_list(struct api *a, const struct api_req *r, struct api_resp *out);
void api_classes_create(struct api *a, const struct api_req *r, struct api_resp *out);
void api_classes_get(struct api *a, const struct api_req *r, struct api_resp *out);
void api_classes_update(struct api *a, const struct api_req *r, struct api_resp *out);
void api_classes_delete(struct api *a, const struct api_req *r, struct api_resp *out);
void api_settings_get(struct api *a, const struct api_req *r, struct api_resp *out);
void api_settings_put(struct api *a, const struct api_req *r, struct api_resp *out);
/* Loads stored settings into the tracker and a (at start). */
int api_settings_load(struct api *a, struct mk_errbuf *eb);

void api_stats_get(struct api *a, const struct api_req *r, struct api_resp *out);
void api_stats_metrics(struct api *a, const struct api_req *r, struct api_resp *out);
void api_stats_health(struct api *a, const struct api_req *r, struct api_resp *out);
int api_stats_start_sampler(struct api *a, struct mk_errbuf *eb);
void api_stats_stop_sampler(struct api *a);

/* ---- peers (api_torrents.c) ------------------------------------------------ */

/* One peer copied out of a swarm, so JSON is built after the lock is gone. */
struct api_peer_row {
    uint8_t info_hash[20];
    uint32_t user_id;
    uint8_t addr[PEER_COMPACT_MAX];
    uint8_t stride;
    bool seeder;
    bool partial;
    uint64_t uploaded;
    uint64_t downloaded;
    uint32_t last_seen;
};

struct api_peer_list {
    struct api_peer_row *rows; /* cap entries, owned */
    uint32_t n, cap;
    bool only_user;            /* keep only user_id's peers */
    uint32_t user_id;
    uint64_t seeding, leeching; /* every matching peer counted, even past cap */
};

/* Copies matching peers of ps (the caller holds its shard lock) while there
 * is room, and counts all of them. O(peers in ps). */
void api_peers_collect(struct api_peer_list *l, const struct peerset *ps,
                       const uint8_t info_hash[20]);
/* {"peers": [...]} with ages relative to the tracker clock `now`. */
json_t *api_peers_json(const struct api_peer_list *l, uint32_t now);

#endif /* MIKA_API_API_INT_H */
