/* cli/cli_table.h: the model of `mika client`'s resources and actions.
 *
 * Owns: the shape of an action (method, path template, arguments, options
 * and their types, how an answer is shown), the lookups over the table, and
 * the two builders whose route depends on the argument (cli_actions.c).
 * Internal to src/cli: cli_table.c holds the table and the help text made
 * from it; cli_actions.c turns argv into a request with it.
 */
#ifndef MIKA_CLI_CLI_TABLE_H
#define MIKA_CLI_CLI_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "cli/cli_actions.h"

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

/* The resource called name (or its plural alias); NULL if none. */
const struct cli_resource *cli_find_resource(const char *name);
/* r's action called name; NULL if none (or name is NULL). */
const struct cli_action *cli_find_action(const struct cli_resource *r, const char *name);

/* Builders of the actions whose route depends on their argument. */
int cli_build_user_get(const struct cli_action *a, const struct cli_parsed *p,
                       struct cli_req *out, struct mk_errbuf *eb);
int cli_build_torrent_add(const struct cli_action *a, const struct cli_parsed *p,
                          struct cli_req *out, struct mk_errbuf *eb);

#endif
