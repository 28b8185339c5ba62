/* fuzz/fuzz_api.c: the admin API's route handlers on arbitrary request bodies.
 *
 * Owns: a complete API state without a server (struct api over an SQLite
 * store in memory, the in-memory users, torrents and whitelist, a tracker),
 * made fresh every FUZZ_ENV_INPUTS inputs (so a replayed input meets a
 * nearly fresh state); seeding it with one user, one torrent and one class
 * through the handlers themselves; and
 * the properties checked on every answer:
 *   - a status the API documents for these routes (200, 201, 400, 404, 409),
 *     never 500: a body can be wrong, never break the server;
 *   - a JSON object that serialises; an error is exactly
 *     {"error": {"code": <string>, "message": <non-empty string>}};
 *   - a created or changed user is what the tracker finds by its passkey
 *     (same id), and a registered torrent is in the tracker's table: a 2xx
 *     is seen by the very next announce.
 * Input: byte 0 picks the route, byte 1 the path parameter, the rest is the
 * body (a NUL-terminated copy of exactly that size, as api_server.c makes).
 * Not here: HTTP, TLS, routing and query strings (libmicrohttpd's side).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "auth/users.h"
#include "auth/whitelist.h"
#include "swarm/torrents.h"
#include "util/log.h"

#include "fuzz.h"

#define FUZZ_SEED_HASH "0123456789abcdef0123456789abcdef01234567"
#define FUZZ_ENV_INPUTS 64
#define FUZZ_SEED_PASSKEY "FuzzSeedPasskey0123456789abcdefX"

struct fuzz_env {
    struct mk_config cfg;
    struct users *users;
    struct torrents *torrents;
    struct whitelist *whitelist;
    struct tracker tracker;
    _Atomic uint32_t generation;
    struct api api;
};

struct fuzz_route {
    api_handler fn;
    const char *content_type;
    bool user_out;     /* a 2xx answer is a user object */
    bool torrent_out;  /* a 2xx answer is a torrent object */
};

static const struct fuzz_route fuzz_routes[] = {
    {api_users_create, "application/json", true, false},
    {api_users_update, "application/json", true, false},
    {api_users_rotate, "application/json", true, false},
    {api_torrents_create, "application/json", false, true},
    {api_torrents_create, "application/x-bittorrent", false, true},
    {api_torrents_update, "application/json", false, true},
    {api_whitelist_add, "application/json", false, false},
    {api_classes_create, "application/json", false, false},
    {api_classes_update, "application/json", false, false},
    {api_settings_put, "application/json", false, false},
};
#define FUZZ_NROUTES (sizeof(fuzz_routes) / sizeof(fuzz_routes[0]))

/* Path parameters as libmicrohttpd would hand them over (URL-decoded). */
static const char *const fuzz_params[] = {
    "1", "2", FUZZ_SEED_HASH, "0", "4294967295", "4294967294", "99",
    "0123456789ABCDEF0123456789ABCDEF01234567", "abc", "", "-1", "01",
    "0123456789abcdef0123456789abcdef0123456", FUZZ_SEED_PASSKEY,
};
#define FUZZ_NPARAMS (sizeof(fuzz_params) / sizeof(fuzz_params[0]))

/* Prints the answer a check refused (libFuzzer's log keeps stderr), so that
 * a finding says which status and error it was without a rerun. */
static void fuzz_print_answer(const char *why, const struct api_resp *out)
{
    char *body = out->json ? api_dump(out->json) : NULL;
    fprintf(stderr, "fuzz_api: %s: status %d, body %s\n", why, out->status,
            body ? body : out->text ? out->text : "(none)");
    free(body);
}

static void fuzz_check_answer(const struct api_resp *out)
{
    int s = out->status;
    if (!(s == 200 || s == 201 || s == 400 || s == 404 || s == 409)) {
        fuzz_print_answer("a status these routes do not answer", out);
        FUZZ_CHECK(false);
    }
    FUZZ_CHECK(out->json != NULL && json_is_object(out->json) && out->text == NULL);
    char *text = api_dump(out->json);
    FUZZ_CHECK(text != NULL);
    json_error_t err;
    json_t *again = json_loads(text, 0, &err);
    FUZZ_CHECK(again != NULL && json_equal(again, out->json));
    json_decref(again);
    free(text);
    if (s >= 400) {
        json_t *e = json_object_get(out->json, "error");
        FUZZ_CHECK(json_object_size(out->json) == 1 && json_is_object(e));
        FUZZ_CHECK(json_object_size(e) == 2);
        FUZZ_CHECK(json_is_string(json_object_get(e, "code")));
        const char *m = json_string_value(json_object_get(e, "message"));
        FUZZ_CHECK(m != NULL && m[0] != '\0');
    }
}

/* A user the API says it stored is what announces find by the passkey. */
static void fuzz_check_user(struct fuzz_env *env, json_t *j)
{
    const char *pk = json_string_value(json_object_get(j, "passkey"));
    json_t *id = json_object_get(j, "id");
    FUZZ_CHECK(pk != NULL && json_is_integer(id));
    struct user_info u;
    FUZZ_CHECK(users_find(env->users, pk, strlen(pk), &u));
    FUZZ_CHECK(u.id == (uint32_t)json_integer_value(id));
    FUZZ_CHECK(u.enabled == json_is_true(json_object_get(j, "enabled")));
}

static void fuzz_check_torrent(struct fuzz_env *env, json_t *j)
{
    const char *hex = json_string_value(json_object_get(j, "info_hash"));
    uint8_t ih[20];
    FUZZ_CHECK(hex != NULL && api_unhex20(hex, ih));
    struct torrent_shard *shard;
    struct torrent *t = torrents_lock(env->torrents, ih, &shard);
    FUZZ_CHECK(t != NULL);
    FUZZ_CHECK(t->id == (uint32_t)json_integer_value(json_object_get(j, "id")));
    FUZZ_CHECK(t->enabled == json_is_true(json_object_get(j, "enabled")));
    torrents_unlock(shard);
}

/* Runs one handler on body; the answer is checked and freed. */
static int fuzz_call(struct fuzz_env *env, const struct fuzz_route *rt, const char *param,
                     const uint8_t *body, size_t len)
{
    char *copy = malloc(len + 1);
    FUZZ_CHECK(copy != NULL);
    if (len) {
        memcpy(copy, body, len);
    }
    copy[len] = '\0';
    struct api_req r;
    memset(&r, 0, sizeof(r));
    r.method = API_POST;
    r.body = copy;
    r.len = len;
    r.content_type = rt->content_type;
    snprintf(r.params[0], sizeof(r.params[0]), "%s", param);
    struct api_resp out;
    memset(&out, 0, sizeof(out));
    rt->fn(&env->api, &r, &out);
    fuzz_check_answer(&out);
    if (out.status < 300 && rt->user_out) {
        fuzz_check_user(env, out.json);
    }
    if (out.status < 300 && rt->torrent_out) {
        fuzz_check_torrent(env, out.json);
    }
    int status = out.status;
    json_decref(out.json);
    free(out.text);
    free(copy);
    return status;
}

static void fuzz_seed(struct fuzz_env *env)
{
    static const char user[] = "{\"id\": 1, \"name\": \"alice\", \"passkey\": \"" FUZZ_SEED_PASSKEY
                               "\"}";
    static const char torrent[] = "{\"info_hash\": \"" FUZZ_SEED_HASH "\", \"name\": \"seed\"}";
    static const char cls[] = "{\"id\": 2, \"name\": \"vip\", \"upload_multiplier\": 2}";
    FUZZ_CHECK(fuzz_call(env, &fuzz_routes[0], "", (const uint8_t *)user, strlen(user)) == 201);
    FUZZ_CHECK(fuzz_call(env, &fuzz_routes[3], "", (const uint8_t *)torrent, strlen(torrent)) ==
               201);
    FUZZ_CHECK(fuzz_call(env, &fuzz_routes[7], "", (const uint8_t *)cls, strlen(cls)) == 201);
}

static struct fuzz_env *fuzz_env_new(void)
{
    struct fuzz_env *env = calloc(1, sizeof(*env));
    FUZZ_CHECK(env != NULL);
    config_defaults(&env->cfg);
    env->users = users_new(1);
    env->torrents = torrents_new(1);
    env->whitelist = whitelist_new();
    FUZZ_CHECK(env->users && env->torrents && env->whitelist);
    struct mk_errbuf eb = {{0}};
    FUZZ_CHECK(tracker_init(&env->tracker, &env->cfg, env->users, env->torrents, env->whitelist,
                            &eb) == 0);
    atomic_init(&env->generation, 1);
    struct api *a = &env->api;
    a->cfg = &env->cfg;
    a->tracker = &env->tracker;
    a->generation = &env->generation;
    pthread_mutex_init(&a->mu, NULL);
    snprintf(a->announce_base, sizeof(a->announce_base), "http://tracker.test:34000");
    struct store_cfg scfg = {.path = ":memory:"};
    FUZZ_CHECK(store_open(&a->store, "sqlite", &scfg, &eb) == 0);
    fuzz_seed(env);
    return env;
}

static void fuzz_env_free(struct fuzz_env *env)
{
    store_close(&env->api.store);
    pthread_mutex_destroy(&env->api.mu);
    torrents_free(env->torrents);
    users_free(env->users);
    whitelist_free(env->whitelist);
    free(env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    /* Only errors: the in-memory store's "journal_mode is memory" warning
     * and the handlers' info lines would drown the fuzzer's output. */
    mk_log_setup(MK_LOG_ERROR, MK_LOG_TEXT, 2);
    /* A fresh state costs a schema migration (about 10 ms under ASan), so
     * one serves FUZZ_ENV_INPUTS inputs: what earlier inputs created can
     * only make later ones reach deeper (updates of their users, conflicts
     * with their names), and the bound keeps the tables small. */
    static struct fuzz_env *env;
    static unsigned served;
    if (env && served++ >= FUZZ_ENV_INPUTS) {
        fuzz_env_free(env);
        env = NULL;
    }
    if (!env) {
        env = fuzz_env_new();
        served = 0;
    }
    const struct fuzz_route *rt = &fuzz_routes[data[0] % FUZZ_NROUTES];
    const char *param = fuzz_params[data[1] % FUZZ_NPARAMS];
    fuzz_call(env, rt, param, data + 2, size - 2);
    return 0;
}
