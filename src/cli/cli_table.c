/* cli/cli_table.c: every `mika client` resource and action, and the help
 * made from them. See cli_table.h.
 *
 * Invariant: every route and field named here is in docs/api.yaml; the
 * server checks values (ranges, patterns), the client checks only types, so
 * the two cannot disagree about a limit.
 */
#include "cli/cli_table.h"

#include <stdio.h>
#include <string.h>

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

const struct cli_resource *cli_find_resource(const char *name)
{
    for (size_t i = 0; i < CLI_NRESOURCES; i++) {
        const struct cli_resource *r = &cli_resources[i];
        if (strcmp(r->name, name) == 0 || (r->alias && strcmp(r->alias, name) == 0)) {
            return r;
        }
    }
    return NULL;
}

const struct cli_action *cli_find_action(const struct cli_resource *r, const char *name)
{
    for (size_t i = 0; i < r->nactions; i++) {
        if (r->actions[i].name && name && strcmp(r->actions[i].name, name) == 0) {
            return &r->actions[i];
        }
    }
    return NULL;
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
