/* cli/cli_actions.h: every `mika client <resource> <action>` and the request it makes.
 *
 * Owns: the table of resources and actions (their arguments, options, help
 * text and how their answers are shown), and turning argv into one API
 * request (method, percent-encoded path and query, JSON or .torrent body),
 * following docs/api.yaml.
 * Not here: sending it (cli_http.c), global options and the connection
 * settings (cli.c), rendering (cli_out.c).
 * Building never touches the network; `torrent add FILE` reads FILE.
 */
#ifndef MIKA_CLI_CLI_ACTIONS_H
#define MIKA_CLI_CLI_ACTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "util/err.h"

/* Largest .torrent file `torrent add` reads: api.max_body_bytes' maximum. */
#define CLI_ACTIONS_MAX_FILE (64u << 20)

enum cli_view {
    CLI_VIEW_AUTO,   /* cli_out_auto(): an object, or a page's table */
    CLI_VIEW_TEXT,   /* the body as text (metrics) */
};

struct cli_req {
    const char *method;           /* static string: "GET", "POST", ... */
    char *path;                   /* owned: /api/v1/..., percent-encoded, with query */
    char *body;                   /* owned; NULL: no body */
    size_t body_len;
    const char *ctype;            /* static: body's Content-Type */
    bool auth;                    /* send the bearer key (every route but /health) */
    enum cli_view view;
    const char *const *cols;      /* table columns for a page; NULL: every member */
};

/* Builds the request for argv = {resource, action, args...} (global options
 * already removed; resources with one action, like `stats`, take no action
 * word). Fails with MK_EINVAL and a one-line message naming the argument or
 * option at fault (an unknown resource, action or option, a missing or extra
 * argument, a value of the wrong type); MK_EIO if a .torrent cannot be read;
 * MK_ELIMIT if it is over CLI_ACTIONS_MAX_FILE; MK_ENOMEM. On failure out
 * holds nothing to free. */
int cli_actions_build(int argc, char **argv, struct cli_req *out, struct mk_errbuf *eb);

/* Frees what out owns; safe on a zeroed struct. */
void cli_req_fini(struct cli_req *out);

/* Help text: resource NULL lists every resource with every action; a
 * resource lists its actions with their options; with an action, that
 * action only. Returns false (printing nothing) for an unknown name. */
bool cli_actions_help(FILE *f, const char *resource, const char *action);

/* Percent-encodes s for a path segment or query value (every byte but
 * A-Z a-z 0-9 - . _ ~) into a new string; NULL on allocation failure. */
char *cli_actions_escape(const char *s);

/* Standard base64 (RFC 4648, with padding) of len bytes into a new
 * NUL-terminated string; NULL on allocation failure or overflow. */
char *cli_actions_base64(const unsigned char *p, size_t len);

#endif /* MIKA_CLI_CLI_ACTIONS_H */
