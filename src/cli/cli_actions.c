/* cli/cli_actions.c: the resources and actions of `mika client`, and argv ->
 * request. See cli_actions.h.
 *
 * Sections: the option and argument model; the table (one row per action,
 * following docs/api.yaml); parsing argv; building requests (generic, and the
 * two actions whose route depends on the argument); help.
 * Invariant: every route and field named here is in docs/api.yaml; the
 * server checks values (ranges, patterns), the client checks only types, so
 * the two cannot disagree about a limit.
 */
#include "cli/cli_actions.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ---- model --------------------------------------------------------------- */

enum cli_type {
    CLI_STR,        /* a JSON string */
    CLI_NSTR,       /* a string; "" sends null (clears it) */
    CLI_INT,        /* a JSON integer */
    CLI_NINT,       /* an integer; "" or "none" sends null */
    CLI_NUM,        /* a JSON number (multipliers) */
    CLI_BOOL,       /* true/false, yes/no, on/off, 1/0 */
    CLI_FLAG_FALSE, /* takes no value; sends false (--restore: deleted=false) */
};

struct cli_opt {
    const char *flag;  /* without the leading "--" */
    const char *field; /* JSON member or query parameter */
    enum cli_type type;
    const char *help;
    bool required;
};

struct cli_arg {
    const char *name;  /* in usage: NAME, ID, HEX */
    const char *field; /* JSON member; NULL: goes into the path's next "{}" */
    bool optional;
};

#define CLI_MAX_ARGS 2
#define CLI_MAX_OPTS 12

struct cli_parsed;
struct cli_action;
typedef int (*cli_build_fn)(const struct cli_action *a, const struct cli_parsed *p,
                            struct cli_req *out, struct mk_errbuf *eb);

struct cli_action {
    const char *name;   /* NULL: the resource's only action, no action word */
    const char *method;
    const char *path;   /* "{}" takes the next path argument, escaped */
    struct cli_arg args[CLI_MAX_ARGS];
    const struct cli_opt *opts; /* NULL-flag terminated, or NULL */
    bool query;         /* options go into the query string, not a JSON body */
    bool needs_opt;     /* at least one option (a change with nothing to change) */
    cli_build_fn build; /* NULL: cli_build_with_path */
    const char *const *cols;
    enum cli_view view;
    bool noauth;
    const char *help;
};

struct cli_resource {
    const char *name;
    const char *alias;
    const char *help;
    const struct cli_action *actions;
    size_t nactions;
};

struct cli_parsed {
    const char *args[CLI_MAX_ARGS];
    int nargs;
    const char *vals[CLI_MAX_OPTS]; /* by option index; NULL = not given */
    int nvals;
};

/* ---- the table ----------------------------------------------------------- */

#define OPT_MULTS                                                                                  \
    {"up-mult", "upload_multiplier", CLI_NUM, "upload multiplier X (0..100, 1 = as is)", false},   \
    {"down-mult", "download_multiplier", CLI_NUM, "download multiplier X (0..100)", false}

static const struct cli_opt user_create_opts[] = {
    {"passkey", "passkey", CLI_STR, "use this passkey (default: 32 random characters)", false},
    {"id", "id", CLI_INT, "use this id (to match the site's user id)", false},
    {"class", "class_id", CLI_INT, "class id (default 1)", false},
    {"enabled", "enabled", CLI_BOOL, "may announce at all (default true)", false},
    {"may-download", "may_download", CLI_BOOL, "may leech (default true)", false},
    OPT_MULTS,
    {NULL, NULL, CLI_STR, NULL, false},
};

static const struct cli_opt user_update_opts[] = {
    {"name", "name", CLI_NSTR, "new name (\"\" clears it)", false},
    {"class", "class_id", CLI_INT, "class id", false},
    {"enabled", "enabled", CLI_BOOL, "may announce at all", false},
    {"may-download", "may_download", CLI_BOOL, "may leech", false},
    OPT_MULTS,
    {NULL, NULL, CLI_STR, NULL, false},
};

static const struct cli_opt page_opts_users[] = {
    {"offset", "offset", CLI_INT, "skip N users (default 0)", false},
    {"limit", "limit", CLI_INT, "at most N users (1..1000, default 100)", false},
    {"enabled", "enabled", CLI_BOOL, "only enabled / disabled users", false},
    {"may-download", "may_download", CLI_BOOL, "filter on the user's own flag", false},
    {"class", "class_id", CLI_INT, "only users of this class id", false},
    {"name", "name", CLI_STR, "only names starting with this text", false},
    {NULL, NULL, CLI_STR, NULL, false},
};

static const struct cli_opt rotate_opts[] = {
    {"passkey", "passkey", CLI_STR, "use this passkey instead of a random one", false},
    {NULL, NULL, CLI_STR, NULL, false},
};

static const struct cli_opt limit_opts[] = {
    {"limit", "limit", CLI_INT, "at most N peers (1..1000, default 100)", false},
    {NULL, NULL, CLI_STR, NULL, false},
};

static const struct cli_opt torrent_create_opts[] = {
    {"name", "name", CLI_STR, "name (default: the .torrent's)", false},
    {"size", "size", CLI_INT, "total bytes (default: the .torrent's)", false},
    {"enabled", "enabled", CLI_BOOL, "may be announced (default true)", false},
    {"freeleech", "freeleech", CLI_BOOL, "downloads not counted (default false)", false},
    OPT_MULTS,
    {NULL, NULL, CLI_STR, NULL, false},
};

static const struct cli_opt torrent_update_opts[] = {
    {"name", "name", CLI_NSTR, "new name (\"\" clears it)", false},
    {"enabled", "enabled", CLI_BOOL, "may be announced", false},
    {"freeleech", "freeleech", CLI_BOOL, "downloads not counted", false},
    OPT_MULTS,
    {"restore", "deleted", CLI_FLAG_FALSE, "undelete a deleted torrent", false},
    {NULL, NULL, CLI_STR, NULL, false},
};

static const struct cli_opt torrent_list_opts[] = {
    {"offset", "offset", CLI_INT, "skip N torrents (default 0)", false},
    {"limit", "limit", CLI_INT, "at most N torrents (1..1000, default 100)", false},
    {"sort", "sort", CLI_STR, "active (default), seeders, leechers, snatches or id", false},
    {"deleted", "deleted", CLI_BOOL, "true lists only deleted torrents", false},
    {NULL, NULL, CLI_STR, NULL, false},
};

static const struct cli_opt torrent_delete_opts[] = {
    {"reason", "reason", CLI_STR, "why (clients get \"unregistered torrent: <reason>\")", true},
    {NULL, NULL, CLI_STR, NULL, false},
};

static const struct cli_opt class_create_opts[] = {
    {"id", "id", CLI_INT, "use this id", false},
    {"may-download", "may_download", CLI_BOOL, "its users may leech (default true)", false},
    OPT_MULTS,
    {NULL, NULL, CLI_STR, NULL, false},
};

static const struct cli_opt class_update_opts[] = {
    {"name", "name", CLI_STR, "new name", false},
    {"may-download", "may_download", CLI_BOOL, "its users may leech", false},
    OPT_MULTS,
    {NULL, NULL, CLI_STR, NULL, false},
};

static const struct cli_opt settings_opts[] = {
    {"interval", "interval", CLI_INT, "announce interval, seconds", false},
    {"min-interval", "min_interval", CLI_INT, "minimum announce interval, seconds", false},
    {"numwant-max", "numwant_max", CLI_INT, "most peers in one answer", false},
    {"event", "event", CLI_STR, "site-wide event: none, freeleech or double_upload", false},
    {"event-ends-at", "event_ends_at", CLI_NINT, "unix time the event ends (none: no end)",
     false},
    {NULL, NULL, CLI_STR, NULL, false},
};

static const char *const user_cols[] = {"id", "name", "enabled", "may_download", "class_id",
                                        "uploaded", "downloaded", NULL};
static const char *const torrent_cols[] = {"info_hash", "name", "seeders", "leechers",
                                           "snatches", "freeleech", "enabled", NULL};
static const char *const peer_cols[] = {"info_hash", "user_id", "ip", "port", "seeder",
                                        "uploaded", "downloaded", "last_seen_seconds_ago", NULL};

static int cli_build_user_get(const struct cli_action *a, const struct cli_parsed *p,
                              struct cli_req *out, struct mk_errbuf *eb);
static int cli_build_torrent_add(const struct cli_action *a, const struct cli_parsed *p,
                                 struct cli_req *out, struct mk_errbuf *eb);

static const struct cli_action user_actions[] = {
    {.name = "add", .method = "POST", .path = "/api/v1/users",
     .args = {{"NAME", "name", true}}, .opts = user_create_opts,
     .help = "create a user; prints its id, passkey and announce URL"},
    {.name = "get", .method = "GET", .args = {{"ID|PASSKEY", NULL, false}},
     .build = cli_build_user_get,
     .help = "show a user by id, or by passkey (digits only: an id)"},
    {.name = "list", .method = "GET", .path = "/api/v1/users", .opts = page_opts_users,
     .query = true, .cols = user_cols, .help = "list users by id, a page at a time"},
    {.name = "update", .method = "PATCH", .path = "/api/v1/users/{}",
     .args = {{"ID", NULL, false}}, .opts = user_update_opts, .needs_opt = true,
     .help = "change a user"},
    {.name = "rotate", .method = "POST", .path = "/api/v1/users/{}/rotate",
     .args = {{"ID", NULL, false}}, .opts = rotate_opts,
     .help = "new passkey; the old one stops working at once"},
    {.name = "delete", .method = "DELETE", .path = "/api/v1/users/{}",
     .args = {{"ID", NULL, false}}, .help = "delete a user; their peers leave every swarm"},
    {.name = "stats", .method = "GET", .path = "/api/v1/users/{}/stats",
     .args = {{"ID", NULL, false}}, .help = "a user's uploaded, downloaded, ratio, snatches"},
    {.name = "peers", .method = "GET", .path = "/api/v1/users/{}/peers",
     .args = {{"ID", NULL, false}}, .opts = limit_opts, .query = true, .cols = peer_cols,
     .help = "a user's active peers"},
};

static const struct cli_action torrent_actions[] = {
    {.name = "add", .method = "POST", .path = "/api/v1/torrents",
     .args = {{"FILE|HEX", NULL, false}}, .opts = torrent_create_opts,
     .build = cli_build_torrent_add,
     .help = "register a .torrent file or a 40-hex info_hash"},
    {.name = "get", .method = "GET", .path = "/api/v1/torrents/{}",
     .args = {{"HEX", NULL, false}}, .help = "show a torrent with live seeders and leechers"},
    {.name = "list", .method = "GET", .path = "/api/v1/torrents", .opts = torrent_list_opts,
     .query = true, .cols = torrent_cols, .help = "list torrents, most active first"},
    {.name = "update", .method = "PATCH", .path = "/api/v1/torrents/{}",
     .args = {{"HEX", NULL, false}}, .opts = torrent_update_opts, .needs_opt = true,
     .help = "change a torrent"},
    {.name = "delete", .method = "DELETE", .path = "/api/v1/torrents/{}",
     .args = {{"HEX", NULL, false}}, .opts = torrent_delete_opts,
     .help = "delete; announces get \"unregistered torrent: <reason>\""},
    {.name = "peers", .method = "GET", .path = "/api/v1/torrents/{}/peers",
     .args = {{"HEX", NULL, false}}, .opts = limit_opts, .query = true, .cols = peer_cols,
     .help = "a torrent's peers"},
};

static const struct cli_action whitelist_actions[] = {
    {.name = "add", .method = "POST", .path = "/api/v1/whitelist",
     .args = {{"PREFIX", "prefix", false}, {"NAME", "name", false}},
     .help = "allow peer_ids starting with PREFIX (%XX: any byte)"},
    {.name = "list", .method = "GET", .path = "/api/v1/whitelist",
     .help = "list the allowed peer_id prefixes"},
    {.name = "delete", .method = "DELETE", .path = "/api/v1/whitelist/{}",
     .args = {{"PREFIX", NULL, false}}, .help = "remove a prefix"},
};

static const struct cli_action class_actions[] = {
    {.name = "list", .method = "GET", .path = "/api/v1/classes", .help = "list user classes"},
    {.name = "add", .method = "POST", .path = "/api/v1/classes",
     .args = {{"NAME", "name", false}}, .opts = class_create_opts, .help = "create a class"},
    {.name = "get", .method = "GET", .path = "/api/v1/classes/{}",
     .args = {{"ID", NULL, false}}, .help = "show a class"},
    {.name = "update", .method = "PATCH", .path = "/api/v1/classes/{}",
     .args = {{"ID", NULL, false}}, .opts = class_update_opts, .needs_opt = true,
     .help = "change a class (its users' next announce sees it)"},
    {.name = "delete", .method = "DELETE", .path = "/api/v1/classes/{}",
     .args = {{"ID", NULL, false}}, .help = "delete a class no user belongs to"},
};

static const struct cli_action settings_actions[] = {
    {.name = "get", .method = "GET", .path = "/api/v1/settings",
     .help = "show the live settings"},
    {.name = "set", .method = "PUT", .path = "/api/v1/settings", .opts = settings_opts,
     .needs_opt = true, .help = "change live settings (stored; seen by the next announce)"},
};

static const struct cli_action stats_actions[] = {
    {.method = "GET", .path = "/api/v1/stats",
     .help = "users, torrents, peers, announces/s, scrapes/s, uptime"},
};

static const struct cli_action health_actions[] = {
    {.method = "GET", .path = "/health", .noauth = true,
     .help = "is the daemon up, does its store answer (no key needed)"},
};

static const struct cli_action metrics_actions[] = {
    {.method = "GET", .path = "/metrics", .view = CLI_VIEW_TEXT,
     .help = "Prometheus metrics, as text"},
};

#define CLI_RES(n, al, h, acts) {(n), (al), (h), (acts), sizeof(acts) / sizeof((acts)[0])}

static const struct cli_resource cli_resources[] = {
    CLI_RES("user", "users", "users and their passkeys", user_actions),
    CLI_RES("torrent", "torrents", "registered torrents", torrent_actions),
    CLI_RES("whitelist", NULL, "allowed BitTorrent clients (peer_id prefixes)",
            whitelist_actions),
    CLI_RES("class", "classes", "user classes (roles): multipliers, may download",
            class_actions),
    CLI_RES("settings", NULL, "live settings: intervals, numwant cap, site-wide events",
            settings_actions),
    CLI_RES("stats", NULL, "tracker-wide statistics", stats_actions),
    CLI_RES("health", NULL, "liveness and store status", health_actions),
    CLI_RES("metrics", NULL, "Prometheus metrics", metrics_actions),
};

#define CLI_NRESOURCES (sizeof(cli_resources) / sizeof(cli_resources[0]))

static const struct cli_resource *cli_find_resource(const char *name)
{
    for (size_t i = 0; i < CLI_NRESOURCES; i++) {
        const struct cli_resource *r = &cli_resources[i];
        if (strcmp(r->name, name) == 0 || (r->alias && strcmp(r->alias, name) == 0)) {
            return r;
        }
    }
    return NULL;
}

static const struct cli_action *cli_find_action(const struct cli_resource *r, const char *name)
{
    for (size_t i = 0; i < r->nactions; i++) {
        if (r->actions[i].name && name && strcmp(r->actions[i].name, name) == 0) {
            return &r->actions[i];
        }
    }
    return NULL;
}

/* ---- small helpers -------------------------------------------------------- */

char *cli_actions_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    if (n > (SIZE_MAX - 1) / 3) {
        return NULL;
    }
    char *out = malloc(n * 3 + 1);
    if (!out) {
        return NULL;
    }
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

char *cli_actions_base64(const unsigned char *p, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3) {
        return NULL;
    }
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out) {
        return NULL;
    }
    char *o = out;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

static bool cli_is_hex40(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return n == 40;
}

static bool cli_is_digits(const char *s)
{
    if (*s == '\0') {
        return false;
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9') {
            return false;
        }
    }
    return true;
}

/* A value quoted back in a message: capped, so a pasted blob cannot push the
 * option's name off the line. */
static const char *cli_excerpt(char *buf, size_t cap, const char *v)
{
    size_t n = strlen(v);
    if (n < cap) {
        return v;
    }
    snprintf(buf, cap, "%.*s...", (int)(cap - 4), v);
    return buf;
}

/* ---- argv ------------------------------------------------------------------ */

static int cli_opt_index(const struct cli_action *a, const char *flag, size_t flen)
{
    for (int i = 0; a->opts && a->opts[i].flag; i++) {
        if (strlen(a->opts[i].flag) == flen && strncmp(a->opts[i].flag, flag, flen) == 0) {
            return i;
        }
    }
    return -1;
}

static int cli_nargs_max(const struct cli_action *a)
{
    int n = 0;
    while (n < CLI_MAX_ARGS && a->args[n].name) {
        n++;
    }
    return n;
}

static int cli_parse(const char *what, const struct cli_action *a, int argc, char **argv,
                     struct cli_parsed *p, struct mk_errbuf *eb)
{
    memset(p, 0, sizeof(*p));
    bool only_args = false;
    int max = cli_nargs_max(a);
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (!only_args && strcmp(s, "--") == 0) {
            only_args = true;
            continue;
        }
        if (!only_args && strncmp(s, "--", 2) == 0) {
            const char *flag = s + 2;
            const char *eq = strchr(flag, '=');
            size_t flen = eq ? (size_t)(eq - flag) : strlen(flag);
            int k = cli_opt_index(a, flag, flen);
            char ex[48];
            if (k < 0) {
                return mk_fail(eb, MK_EINVAL, "%s: unknown option \"%s\" (see %s --help)", what,
                               cli_excerpt(ex, sizeof(ex), s), what);
            }
            if (p->vals[k]) {
                return mk_fail(eb, MK_EINVAL, "%s: --%s given twice", what, a->opts[k].flag);
            }
            if (a->opts[k].type == CLI_FLAG_FALSE) {
                if (eq) {
                    return mk_fail(eb, MK_EINVAL, "%s: --%s takes no value", what,
                                   a->opts[k].flag);
                }
                p->vals[k] = "";
            } else if (eq) {
                p->vals[k] = eq + 1;
            } else if (i + 1 < argc) {
                p->vals[k] = argv[++i];
            } else {
                return mk_fail(eb, MK_EINVAL, "%s: --%s needs a value", what, a->opts[k].flag);
            }
            p->nvals++;
            continue;
        }
        if (p->nargs == max) {
            char ex[48];
            return mk_fail(eb, MK_EINVAL, "%s: unexpected argument \"%s\"", what,
                           cli_excerpt(ex, sizeof(ex), s));
        }
        p->args[p->nargs++] = s;
    }
    for (int i = p->nargs; i < max; i++) {
        if (!a->args[i].optional) {
            return mk_fail(eb, MK_EINVAL, "%s: missing %s", what, a->args[i].name);
        }
    }
    for (int i = 0; a->opts && a->opts[i].flag; i++) {
        if (a->opts[i].required && !p->vals[i]) {
            return mk_fail(eb, MK_EINVAL, "%s: --%s is required", what, a->opts[i].flag);
        }
    }
    if (a->needs_opt && p->nvals == 0) {
        return mk_fail(eb, MK_EINVAL, "%s: nothing to change (see %s --help)", what, what);
    }
    return MK_OK;
}

/* ---- values ---------------------------------------------------------------- */

static int cli_parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static json_t *cli_value(const struct cli_opt *o, const char *v, const char *what,
                         struct mk_errbuf *eb, int *rc)
{
    char ex[48];
    *rc = MK_OK;
    if ((o->type == CLI_NSTR && *v == '\0') ||
        (o->type == CLI_NINT && (*v == '\0' || strcmp(v, "none") == 0))) {
        return json_null();
    }
    switch (o->type) {
    case CLI_STR:
    case CLI_NSTR: {
        json_t *s = json_string(v);
        if (!s) {
            *rc = mk_fail(eb, MK_EINVAL, "%s: --%s: not valid UTF-8", what, o->flag);
        }
        return s;
    }
    case CLI_INT:
    case CLI_NINT: {
        errno = 0;
        char *end;
        long long n = strtoll(v, &end, 10);
        if (*v == '\0' || *end != '\0' || errno != 0 || !(*v == '-' || (*v >= '0' && *v <= '9'))) {
            *rc = mk_fail(eb, MK_EINVAL, "%s: --%s: \"%s\" is not an integer", what, o->flag,
                          cli_excerpt(ex, sizeof(ex), v));
            return NULL;
        }
        return json_integer(n);
    }
    case CLI_NUM: {
        errno = 0;
        char *end;
        double d = strtod(v, &end);
        if (*v == '\0' || *end != '\0' || errno != 0 || !isfinite(d)) {
            *rc = mk_fail(eb, MK_EINVAL, "%s: --%s: \"%s\" is not a number", what, o->flag,
                          cli_excerpt(ex, sizeof(ex), v));
            return NULL;
        }
        return json_real(d);
    }
    case CLI_BOOL: {
        bool b;
        if (cli_parse_bool(v, &b) != 0) {
            *rc = mk_fail(eb, MK_EINVAL, "%s: --%s: \"%s\" is not true or false", what, o->flag,
                          cli_excerpt(ex, sizeof(ex), v));
            return NULL;
        }
        return json_boolean(b);
    }
    case CLI_FLAG_FALSE:
        return json_false();
    }
    *rc = mk_fail(eb, MK_EINVAL, "%s: --%s: unhandled type", what, o->flag);
    return NULL;
}

/* ---- building -------------------------------------------------------------- */

/* The path with each "{}" replaced by the next path argument, escaped. */
static int cli_fill_path(const char *tmpl, const struct cli_action *a, const struct cli_parsed *p,
                         struct cli_req *out, struct mk_errbuf *eb)
{
    const char *vals[CLI_MAX_ARGS];
    int nvals = 0;
    for (int i = 0; i < p->nargs; i++) {
        if (!a->args[i].field) {
            vals[nvals++] = p->args[i];
        }
    }
    size_t cap = strlen(tmpl) + 1;
    for (int i = 0; i < nvals; i++) {
        cap += strlen(vals[i]) * 3;
    }
    out->path = malloc(cap);
    if (!out->path) {
        return mk_fail(eb, MK_ENOMEM, "out of memory");
    }
    char *o = out->path;
    int next = 0;
    for (const char *t = tmpl; *t;) {
        if (t[0] == '{' && t[1] == '}' && next < nvals) {
            char *e = cli_actions_escape(vals[next++]);
            if (!e) {
                return mk_fail(eb, MK_ENOMEM, "out of memory");
            }
            size_t n = strlen(e);
            memcpy(o, e, n);
            o += n;
            free(e);
            t += 2;
        } else {
            *o++ = *t++;
        }
    }
    *o = '\0';
    return MK_OK;
}

/* The positional fields and the given options as one JSON object. */
static int cli_fields(const char *what, const struct cli_action *a, const struct cli_parsed *p,
                      json_t **obj, struct mk_errbuf *eb)
{
    *obj = json_object();
    if (!*obj) {
        return mk_fail(eb, MK_ENOMEM, "out of memory");
    }
    for (int i = 0; i < p->nargs; i++) {
        if (!a->args[i].field) {
            continue;
        }
        json_t *s = json_string(p->args[i]);
        if (!s) {
            return mk_fail(eb, MK_EINVAL, "%s: %s: not valid UTF-8", what, a->args[i].name);
        }
        json_object_set_new(*obj, a->args[i].field, s);
    }
    for (int i = 0; a->opts && a->opts[i].flag; i++) {
        if (!p->vals[i]) {
            continue;
        }
        int rc;
        json_t *v = cli_value(&a->opts[i], p->vals[i], what, eb, &rc);
        if (rc != MK_OK) {
            return rc;
        }
        if (!v || json_object_set_new(*obj, a->opts[i].field, v) != 0) {
            return mk_fail(eb, MK_ENOMEM, "out of memory");
        }
    }
    return MK_OK;
}

/* A query string from the object's members, appended to out->path. */
static int cli_append_query(json_t *obj, struct cli_req *out, struct mk_errbuf *eb)
{
    if (json_object_size(obj) == 0) {
        return MK_OK;
    }
    size_t cap = strlen(out->path) + 2;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        cap += strlen(k) * 3 + 2 + (json_is_string(v) ? json_string_length(v) * 3 : 32);
    }
    char *q = malloc(cap);
    if (!q) {
        return mk_fail(eb, MK_ENOMEM, "out of memory");
    }
    size_t len = (size_t)snprintf(q, cap, "%s", out->path);
    char sep = '?';
    json_object_foreach(obj, k, v) {
        char num[32];
        const char *text = num;
        if (json_is_string(v)) {
            text = json_string_value(v);
        } else if (json_is_integer(v)) {
            snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        } else if (json_is_boolean(v)) {
            text = json_is_true(v) ? "true" : "false";
        } else {
            snprintf(num, sizeof(num), "%.17g", json_number_value(v));
        }
        char *ek = cli_actions_escape(k);
        char *ev = cli_actions_escape(text);
        if (!ek || !ev) {
            free(ek);
            free(ev);
            free(q);
            return mk_fail(eb, MK_ENOMEM, "out of memory");
        }
        len += (size_t)snprintf(q + len, cap - len, "%c%s=%s", sep, ek, ev);
        sep = '&';
        free(ek);
        free(ev);
    }
    free(out->path);
    out->path = q;
    return MK_OK;
}

static int cli_set_json_body(json_t *obj, struct cli_req *out, struct mk_errbuf *eb)
{
    if (json_object_size(obj) == 0) {
        return MK_OK; /* every body is optional where no field is required */
    }
    out->body = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!out->body) {
        return mk_fail(eb, MK_ENOMEM, "out of memory");
    }
    out->body_len = strlen(out->body);
    out->ctype = "application/json";
    return MK_OK;
}

static int cli_build_with_path(const struct cli_action *a, const struct cli_parsed *p,
                               const char *tmpl, const char *what, struct cli_req *out,
                               struct mk_errbuf *eb)
{
    json_t *obj = NULL;
    int rc = cli_fill_path(tmpl, a, p, out, eb);
    if (rc == MK_OK) {
        rc = cli_fields(what, a, p, &obj, eb);
    }
    if (rc == MK_OK) {
        rc = a->query ? cli_append_query(obj, out, eb) : cli_set_json_body(obj, out, eb);
    }
    json_decref(obj);
    return rc;
}

/* Digits only is an id: passkeys the tracker generates always hold letters
 * (and a site that chose all-digit passkeys can look them up by id). */
static int cli_build_user_get(const struct cli_action *a, const struct cli_parsed *p,
                              struct cli_req *out, struct mk_errbuf *eb)
{
    const char *tmpl = cli_is_digits(p->args[0]) ? "/api/v1/users/{}" : "/api/v1/users/passkey/{}";
    return cli_build_with_path(a, p, tmpl, "user get", out, eb);
}

static int cli_read_file(const char *path, unsigned char **data, size_t *len,
                         struct mk_errbuf *eb)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return mk_fail(eb, MK_EIO, "%s: %s", path, strerror(errno));
    }
    size_t cap = 64 * 1024;
    size_t n = 0;
    unsigned char *buf = malloc(cap);
    int rc = MK_OK;
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) {
            break;
        }
        if (cap > CLI_ACTIONS_MAX_FILE) {
            rc = mk_fail(eb, MK_ELIMIT, "%s: larger than %u bytes", path, CLI_ACTIONS_MAX_FILE);
            break;
        }
        unsigned char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    if (!buf) {
        rc = mk_fail(eb, MK_ENOMEM, "out of memory");
    } else if (rc == MK_OK && ferror(f)) {
        rc = mk_fail(eb, MK_EIO, "%s: read error", path);
    }
    fclose(f);
    if (rc != MK_OK) {
        free(buf);
        return rc;
    }
    *data = buf;
    *len = n;
    return MK_OK;
}

/* A 40-hex argument that is not an existing file is an info_hash. A file
 * alone goes as the raw .torrent body (the largest upload the server takes);
 * with options it goes base64 in JSON, the one form that carries both. */
static int cli_build_torrent_add(const struct cli_action *a, const struct cli_parsed *p,
                                 struct cli_req *out, struct mk_errbuf *eb)
{
    const char *arg = p->args[0];
    struct stat st;
    bool is_file = stat(arg, &st) == 0;
    bool missing = !is_file && errno == ENOENT;
    out->path = strdup(a->path);
    if (!out->path) {
        return mk_fail(eb, MK_ENOMEM, "out of memory");
    }
    json_t *obj = NULL;
    int rc = cli_fields("torrent add", a, p, &obj, eb);
    if (rc != MK_OK) {
        json_decref(obj);
        return rc;
    }
    if (!is_file && cli_is_hex40(arg)) {
        json_object_set_new(obj, "info_hash", json_string(arg));
    } else {
        unsigned char *data = NULL;
        size_t len = 0;
        if (missing) {
            char ex[48];
            json_decref(obj);
            return mk_fail(eb, MK_EIO,
                           "torrent add: \"%s\" is neither a file nor a 40-hex info_hash",
                           cli_excerpt(ex, sizeof(ex), arg));
        }
        rc = cli_read_file(arg, &data, &len, eb);
        if (rc == MK_OK && json_object_size(obj) == 0) {
            out->body = (char *)data;
            out->body_len = len;
            out->ctype = "application/x-bittorrent";
            json_decref(obj);
            return MK_OK;
        }
        if (rc == MK_OK) {
            char *b64 = cli_actions_base64(data, len);
            if (!b64 || json_object_set_new(obj, "torrent_base64", json_string(b64)) != 0) {
                rc = mk_fail(eb, MK_ENOMEM, "out of memory");
            }
            free(b64);
        }
        free(data);
    }
    if (rc == MK_OK) {
        rc = cli_set_json_body(obj, out, eb);
    }
    json_decref(obj);
    return rc;
}

int cli_actions_build(int argc, char **argv, struct cli_req *out, struct mk_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    if (argc < 1) {
        return mk_fail(eb, MK_EINVAL, "no resource given (see mika client --help)");
    }
    char ex[48];
    const struct cli_resource *r = cli_find_resource(argv[0]);
    if (!r) {
        return mk_fail(eb, MK_EINVAL, "unknown resource \"%s\" (see mika client --help)",
                       cli_excerpt(ex, sizeof(ex), argv[0]));
    }
    const struct cli_action *a;
    int used = 1;
    if (r->nactions == 1 && !r->actions[0].name) {
        a = &r->actions[0];
    } else if (argc < 2) {
        return mk_fail(eb, MK_EINVAL, "%s: no action given (see mika client %s --help)", r->name,
                       r->name);
    } else if (!(a = cli_find_action(r, argv[1]))) {
        return mk_fail(eb, MK_EINVAL, "%s: unknown action \"%s\" (see mika client %s --help)",
                       r->name, cli_excerpt(ex, sizeof(ex), argv[1]), r->name);
    } else {
        used = 2;
    }
    char what[64];
    snprintf(what, sizeof(what), "%s%s%s", r->name, a->name ? " " : "", a->name ? a->name : "");
    struct cli_parsed p;
    int rc = cli_parse(what, a, argc - used, argv + used, &p, eb);
    if (rc != MK_OK) {
        return rc;
    }
    out->method = a->method;
    out->auth = !a->noauth;
    out->view = a->view;
    out->cols = a->cols;
    rc = a->build ? a->build(a, &p, out, eb) : cli_build_with_path(a, &p, a->path, what, out, eb);
    if (rc != MK_OK) {
        cli_req_fini(out);
    }
    return rc;
}

void cli_req_fini(struct cli_req *out)
{
    free(out->path);
    free(out->body);
    out->path = NULL;
    out->body = NULL;
    out->body_len = 0;
}

/* ---- help ------------------------------------------------------------------ */

static const char *cli_metavar(enum cli_type t)
{
    switch (t) {
    case CLI_STR:
    case CLI_NSTR:
        return " TEXT";
    case CLI_INT:
    case CLI_NINT:
        return " N";
    case CLI_NUM:
        return " X";
    case CLI_BOOL:
        return " true|false";
    case CLI_FLAG_FALSE:
        return "";
    }
    return "";
}

static void cli_help_action(FILE *f, const struct cli_resource *r, const struct cli_action *a,
                            bool with_opts)
{
    char usage[128];
    int n = snprintf(usage, sizeof(usage), "%s%s%s", r->name, a->name ? " " : "",
                     a->name ? a->name : "");
    for (int i = 0; i < CLI_MAX_ARGS && a->args[i].name; i++) {
        n += snprintf(usage + n, sizeof(usage) - (size_t)n, a->args[i].optional ? " [%s]" : " %s",
                      a->args[i].name);
    }
    bool optional = false;
    for (int i = 0; a->opts && a->opts[i].flag && n < (int)sizeof(usage); i++) {
        if (a->opts[i].required) {
            n += snprintf(usage + n, sizeof(usage) - (size_t)n, " --%s%s", a->opts[i].flag,
                          cli_metavar(a->opts[i].type));
        }
        optional = optional || !a->opts[i].required;
    }
    if (optional && n < (int)sizeof(usage)) {
        snprintf(usage + n, sizeof(usage) - (size_t)n, " [options]");
    }
    /* Long usages put the help on the next line, to stay within 100 columns. */
    if (strlen(usage) <= 34) {
        fprintf(f, "  %-34s %s\n", usage, a->help);
    } else {
        fprintf(f, "  %s\n  %-34s %s\n", usage, "", a->help);
    }
    if (!with_opts) {
        return;
    }
    for (int i = 0; a->opts && a->opts[i].flag; i++) {
        char flag[48];
        snprintf(flag, sizeof(flag), "--%s%s", a->opts[i].flag, cli_metavar(a->opts[i].type));
        fprintf(f, "      %-32s %s\n", flag, a->opts[i].help);
    }
}

bool cli_actions_help(FILE *f, const char *resource, const char *action)
{
    if (!resource) {
        for (size_t i = 0; i < CLI_NRESOURCES; i++) {
            const struct cli_resource *r = &cli_resources[i];
            fprintf(f, "%s: %s\n", r->name, r->help);
            for (size_t j = 0; j < r->nactions; j++) {
                cli_help_action(f, r, &r->actions[j], false);
            }
        }
        return true;
    }
    const struct cli_resource *r = cli_find_resource(resource);
    if (!r) {
        return false;
    }
    const struct cli_action *one = action ? cli_find_action(r, action) : NULL;
    if (action && !one) {
        return false;
    }
    fprintf(f, "%s: %s\n", r->name, r->help);
    for (size_t j = 0; j < r->nactions; j++) {
        if (!one || one == &r->actions[j]) {
            cli_help_action(f, r, &r->actions[j], true);
        }
    }
    return true;
}
