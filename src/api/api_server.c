/* api/api_server.c: the admin API's HTTPS server: start, stop, one request.
 *
 * Owns: the libmicrohttpd daemon (TLS 1.2 and 1.3 only, a small thread
 * pool, its own port), reading a body up to api.max_body_bytes, bearer-key
 * authentication, the route table and its 404/405 answers, and sending the
 * JSON (or text) answer.
 * Not here: what a route does (api_users.c, api_torrents.c, api_admin.c,
 * api_stats.c), JSON helpers (api_reply.c), keys and certificates (api_tls.c).
 * Invariants: every route but GET /health needs a valid key, checked before
 * the route is even looked up (so a stranger learns nothing about routes);
 * a body over the cap is read and thrown away, never stored, and answered 413.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/api_int.h"
#include "util/log.h"

#define API_THREADS 4
#define API_CONNECTION_TIMEOUT 30 /* seconds */
/* A client that keeps sending past this after its body was refused is cut off. */
#define API_DISCARD_MAX (64u << 20)
#define API_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct api_route {
    const char *pattern; /* segments; "{}" captures one */
    api_handler get, post, put, patch, del;
};

/* Literal routes come before captures that could match the same path. */
static const struct api_route api_routes[] = {
    {"/health", .get = api_stats_health},
    {"/metrics", .get = api_stats_metrics},
    {"/api/v1/users", .get = api_users_list, .post = api_users_create},
    {"/api/v1/users/passkey/{}", .get = api_users_get_by_passkey},
    {"/api/v1/users/{}", .get = api_users_get, .patch = api_users_update, .del = api_users_delete},
    {"/api/v1/users/{}/rotate", .post = api_users_rotate},
    {"/api/v1/users/{}/stats", .get = api_users_stats},
    {"/api/v1/users/{}/peers", .get = api_users_peers},
    {"/api/v1/users/{}/history", .get = api_users_history},
    {"/api/v1/users/{}/hnr", .get = api_users_hnr},
    {"/api/v1/users/{}/suspicious", .get = api_users_suspicious},
    {"/api/v1/users/{}/tokens", .get = api_users_tokens_list, .post = api_users_tokens_add},
    {"/api/v1/users/{}/tokens/{}", .del = api_users_tokens_delete},
    {"/api/v1/torrents", .get = api_torrents_list, .post = api_torrents_create},
    {"/api/v1/torrents/{}", .get = api_torrents_get, .patch = api_torrents_update,
     .del = api_torrents_delete},
    {"/api/v1/torrents/{}/peers", .get = api_torrents_peers},
    {"/api/v1/whitelist", .get = api_whitelist_list, .post = api_whitelist_add},
    {"/api/v1/whitelist/{}", .del = api_whitelist_delete},
    {"/api/v1/classes", .get = api_classes_list, .post = api_classes_create},
    {"/api/v1/classes/{}", .get = api_classes_get, .patch = api_classes_update,
     .del = api_classes_delete},
    {"/api/v1/settings", .get = api_settings_get, .put = api_settings_put},
    {"/api/v1/stats", .get = api_stats_get},
};

/* One request's body as it arrives. */
struct api_conn {
    bool allowed;     /* public route, or a valid key: decided from the headers */
    struct api_resp denied; /* the 401 otherwise */
    char *body;
    size_t len, cap;
    bool too_large;
    size_t discarded;
};

/* Matches url against pattern, copying captures into params. */
static bool api_route_match(const char *pattern, const char *url,
                            char params[API_PATH_PARAMS][API_PARAM_MAX])
{
    size_t np = 0;
    const char *p = pattern, *u = url;
    while (*p && *u) {
        if (*p != '/' || *u != '/') {
            return false;
        }
        p++;
        u++;
        size_t plen = strcspn(p, "/"), ulen = strcspn(u, "/");
        if (plen == 2 && memcmp(p, "{}", 2) == 0) {
            if (ulen == 0 || ulen >= API_PARAM_MAX || np == API_PATH_PARAMS) {
                return false;
            }
            memcpy(params[np], u, ulen);
            params[np][ulen] = '\0';
            np++;
        } else if (plen != ulen || memcmp(p, u, plen) != 0) {
            return false;
        }
        p += plen;
        u += ulen;
    }
    return *p == '\0' && *u == '\0';
}

static enum api_method api_method_of(const char *m)
{
    static const struct {
        const char *name;
        enum api_method m;
    } methods[] = {{"GET", API_GET},     {"POST", API_POST},     {"PUT", API_PUT},
                   {"PATCH", API_PATCH}, {"DELETE", API_DELETE}};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(m, methods[i].name) == 0) {
            return methods[i].m;
        }
    }
    return API_OTHER;
}

static api_handler api_route_handler(const struct api_route *rt, enum api_method m)
{
    switch (m) {
    case API_GET:
        return rt->get;
    case API_POST:
        return rt->post;
    case API_PUT:
        return rt->put;
    case API_PATCH:
        return rt->patch;
    case API_DELETE:
        return rt->del;
    case API_OTHER:
        break;
    }
    return NULL;
}

static void api_allow(const struct api_route *rt, char *out, size_t cap)
{
    const struct {
        api_handler h;
        const char *name;
    } all[] = {{rt->get, "GET"},     {rt->post, "POST"},    {rt->put, "PUT"},
               {rt->patch, "PATCH"}, {rt->del, "DELETE"}};
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (all[i].h) {
            n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? ", " : "", all[i].name);
        }
    }
}

/* "Bearer <key>", the scheme case-insensitive (RFC 9110 11.1). */
static bool api_authorized(const struct api *a, struct MHD_Connection *c, struct api_resp *out)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h) {
        api_error(out, 401, "unauthorized", "Authorization: missing (send Bearer <key>)");
        return false;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        api_error(out, 401, "unauthorized", "Authorization: not a Bearer key");
        return false;
    }
    const char *key = h + 7;
    while (*key == ' ') {
        key++;
    }
    if (!api_tls_key_ok(&a->tls, key, strlen(key))) {
        api_error(out, 401, "unauthorized", "Authorization: wrong key");
        return false;
    }
    return true;
}

/* Answers one request; returns the route's pattern (for logs: a URL may
 * hold a passkey, which is never logged). */
static const char *api_dispatch(struct api *a, struct MHD_Connection *c, const char *url,
                                const char *method, struct api_conn *ac, struct api_resp *out)
{
    enum api_method m = api_method_of(method);
    if (!ac->allowed) {
        *out = ac->denied;
        ac->denied.json = NULL;
        return "(unauthorized)";
    }
    if (ac->too_large) {
        api_error(out, 413, "payload_too_large", "body: larger than api.max_body_bytes (%u)",
                  a->cfg->api_max_body_bytes);
        return "(too large)";
    }
    struct api_req req = {
        .method = m,
        .conn = c,
        .body = ac->body ? ac->body : "",
        .len = ac->len,
        .content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_CONTENT_TYPE),
    };
    for (size_t i = 0; i < sizeof(api_routes) / sizeof(api_routes[0]); i++) {
        const struct api_route *rt = &api_routes[i];
        if (!api_route_match(rt->pattern, url, req.params)) {
            continue;
        }
        api_handler h = api_route_handler(rt, m);
        if (!h) {
            api_error(out, 405, "method_not_allowed", "%s is not allowed on %s", method,
                      rt->pattern);
            api_allow(rt, out->allow, sizeof(out->allow));
            return rt->pattern;
        }
        h(a, &req, out);
        return rt->pattern;
    }
    api_error(out, 404, "not_found", "no such route");
    return "(no route)";
}

static enum MHD_Result api_send(struct MHD_Connection *c, struct api_resp *r)
{
    const char *ctype = "application/json";
    char *body = r->text;
    size_t len;
    if (body) {
        ctype = "text/plain; version=0.0.4; charset=utf-8";
        r->text = NULL;
        len = strlen(body);
    } else {
        if (!r->json) {
            api_error(r, 500, "internal", "no answer");
        }
        char *j = r->json ? api_dump(r->json) : NULL;
        len = j ? strlen(j) : 0;
        /* A line end, so that curl output ends where a shell prompt starts. */
        body = j ? realloc(j, len + 2) : NULL;
        if (!body) {
            free(j);
            return MHD_NO;
        }
        body[len++] = '\n';
        body[len] = '\0';
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (r->status == 401) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"mika\"");
    }
    if (r->allow[0]) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    }
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Appends a chunk of body; past the cap the body is dropped and the rest
 * counted, so the answer can still be a proper 413. */
static bool api_take_body(struct api *a, struct api_conn *ac, const char *data, size_t n)
{
    size_t max = a->cfg->api_max_body_bytes;
    if (!ac->allowed) {
        /* A stranger's body is never kept: read and dropped, then 401. */
        ac->discarded += n;
        return ac->discarded <= API_DISCARD_MAX;
    }
    if (!ac->too_large && n <= max - ac->len) {
        if (ac->len + n + 1 > ac->cap) {
            size_t cap = ac->cap ? ac->cap : 4096;
            while (cap < ac->len + n + 1) {
                cap *= 2;
            }
            if (cap > max + 1) {
                cap = max + 1;
            }
            char *grown = realloc(ac->body, cap);
            if (!grown) {
                return false;
            }
            ac->body = grown;
            ac->cap = cap;
        }
        memcpy(ac->body + ac->len, data, n);
        ac->len += n;
        ac->body[ac->len] = '\0';
        return true;
    }
    if (!ac->too_large) {
        ac->too_large = true;
        ac->discarded = ac->len;
        free(ac->body);
        ac->body = NULL;
        ac->len = ac->cap = 0;
    }
    ac->discarded += n;
    return ac->discarded <= API_DISCARD_MAX;
}

static enum MHD_Result api_access(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct api *a = cls;
    struct api_conn *ac = *con_cls;
    if (!ac) {
        ac = calloc(1, sizeof(*ac));
        if (!ac) {
            return MHD_NO;
        }
        *con_cls = ac;
        /* The key is checked before any body is taken in. */
        bool public = strcmp(method, "GET") == 0 && strcmp(url, "/health") == 0;
        ac->allowed = public || api_authorized(a, c, &ac->denied);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        bool ok = api_take_body(a, ac, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return ok ? MHD_YES : MHD_NO;
    }
    atomic_fetch_add_explicit(&a->requests, 1, memory_order_relaxed);
    struct api_resp resp = {.status = 500};
    const char *route = api_dispatch(a, c, url, method, ac, &resp);
    mk_log(resp.status >= 500 ? MK_LOG_WARN : MK_LOG_DEBUG, "api", "%.8s %s: %d", method, route,
           resp.status);
    enum MHD_Result ret = api_send(c, &resp);
    json_decref(resp.json);
    free(resp.text);
    return ret;
}

static void api_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
    struct api_conn *ac = *con_cls;
    if (ac) {
        json_decref(ac->denied.json);
        free(ac->body);
        free(ac);
        *con_cls = NULL;
    }
}

static void api_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[256];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
        msg[--n] = '\0';
    }
    /* Handshake failures from scanners and old clients are routine. */
    mk_log(MK_LOG_DEBUG, "api.mhd", "%s", msg);
}

/* "http://<hostname>:<server.port>" unless api.announce_url says otherwise. */
static void api_announce_base(struct api *a)
{
    const char *u = a->cfg->api_announce_url;
    if (*u) {
        snprintf(a->announce_base, sizeof(a->announce_base), "%s", u);
        size_t n = strlen(a->announce_base);
        while (n > 0 && a->announce_base[n - 1] == '/') {
            a->announce_base[--n] = '\0';
        }
        return;
    }
    char host[256];
    if (gethostname(host, sizeof(host)) != 0) {
        snprintf(host, sizeof(host), "localhost");
    }
    host[sizeof(host) - 1] = '\0';
    snprintf(a->announce_base, sizeof(a->announce_base), "http://%s:%u", host, a->cfg->port);
}

int api_start(struct api **out, const struct api_deps *deps, struct mk_errbuf *eb)
{
    *out = NULL;
    const struct mk_config *cfg = deps->cfg;
    if (!cfg->api_enabled) {
        return 0;
    }
    struct api *a = calloc(1, sizeof(*a));
    if (!a) {
        return mk_fail(eb, MK_ENOMEM, "out of memory");
    }
    a->cfg = cfg;
    a->tracker = deps->tracker;
    a->generation = deps->generation;
    a->changes = deps->changes;
    clock_gettime(CLOCK_MONOTONIC, &a->started);
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->sample_mu, NULL);
    pthread_cond_init(&a->sample_cv, NULL);
    api_announce_base(a);

    int rc = store_open_kinds(&a->store, deps->places, eb);
    if (rc == 0) {
        rc = api_settings_load(a, eb);
    }
    if (rc == 0) {
        rc = api_tls_load(&a->tls, cfg, eb);
    }
    if (rc != 0) {
        api_stop(a);
        return rc;
    }

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_TLS |
                     MHD_USE_ERROR_LOG;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, cfg->api_bind, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(cfg->api_port);
    } else if (inet_pton(AF_INET6, cfg->api_bind, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(cfg->api_port);
        flags |= MHD_USE_IPv6;
    } else {
        api_stop(a);
        return mk_fail(eb, MK_EINVAL, "api.bind: \"%s\" is not an address", cfg->api_bind);
    }
    a->mhd = MHD_start_daemon(
        flags, cfg->api_port, NULL, NULL, api_access, a, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_HTTPS_MEM_CERT, a->tls.cert_pem, MHD_OPTION_HTTPS_MEM_KEY, a->tls.key_pem,
        MHD_OPTION_HTTPS_PRIORITIES, API_TLS_PRIORITIES, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)API_THREADS, MHD_OPTION_CONNECTION_LIMIT, (unsigned)a->cfg->api_max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)API_CONNECTION_TIMEOUT,
        MHD_OPTION_NOTIFY_COMPLETED, api_completed, a, MHD_OPTION_EXTERNAL_LOGGER, api_mhd_log,
        a, MHD_OPTION_END);
    if (!a->mhd) {
        api_stop(a);
        return mk_fail(eb, MK_EUNAVAIL,
                       "api: cannot listen on %s port %u (in use, or not an address of this"
                       " machine)",
                       cfg->api_bind, cfg->api_port);
    }
    rc = api_stats_start_sampler(a, eb);
    if (rc != 0) {
        api_stop(a);
        return rc;
    }
    if (a->tls.generated) {
        mk_log(MK_LOG_INFO, "api", "wrote a self-signed certificate to %s/%s (key: %s, mode 0600)",
               cfg->api_data_dir, API_TLS_CERT_FILE, API_TLS_KEY_FILE);
    }
    mk_log(MK_LOG_INFO, "api", "admin API on https://%s%s%s:%u (TLS 1.2+), certificate SHA-256 %s",
           strchr(cfg->api_bind, ':') ? "[" : "", cfg->api_bind,
           strchr(cfg->api_bind, ':') ? "]" : "", cfg->api_port, a->tls.fingerprint);
    *out = a;
    return 0;
}

void api_stop(struct api *a)
{
    if (!a) {
        return;
    }
    if (a->mhd) {
        MHD_stop_daemon(a->mhd);
    }
    api_stats_stop_sampler(a);
    store_close(&a->store);
    api_tls_fini(&a->tls);
    pthread_cond_destroy(&a->sample_cv);
    pthread_mutex_destroy(&a->sample_mu);
    pthread_mutex_destroy(&a->mu);
    free(a);
}
