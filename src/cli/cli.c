/* cli/cli.c: `mika client`: global options, connection settings, one request,
 * and its answer shown as a table, as JSON, or as a one-line error. See cli.h.
 */
#include "cli/cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_actions.h"
#include "cli/cli_out.h"
#include "conf/config.h"

extern char **environ;

enum cli_exit { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };

#define CLI_MAX_ENV 1024 /* environment entries passed on to config_load */

static void cli_usage(FILE *f)
{
    fprintf(f,
            "usage: mika client [options] <resource> <action> [arguments] [action options]\n"
            "\n"
            "Drives the tracker's admin API (HTTPS). On the daemon's own machine, run from\n"
            "its directory, it needs no set-up: it reads the key and certificate the daemon\n"
            "wrote into its data_dir.\n"
            "\n"
            "options (anywhere on the line):\n"
            "  --url URL          API address (env MIKA_API_URL; default from the config:\n"
            "                     https://127.0.0.1:34001)\n"
            "  --key KEY          API key (env MIKA_API_KEY; default: api.keys, else\n"
            "                     <data_dir>/api.key)\n"
            "  --key-file FILE    read the API key from FILE (keeps it out of `ps`)\n"
            "  --cacert FILE      trust this certificate (env MIKA_API_CACERT or MIKA_API_CERT;\n"
            "                     default: api.tls_cert, else <data_dir>/api-cert.pem, else the\n"
            "                     system's)\n"
            "  --config FILE      the daemon's INI file ([api] port, bind, keys, tls_cert,\n"
            "                     data_dir)\n"
            "  --json             print the API's JSON answer unchanged\n"
            "  --timeout SECONDS  give up after this long (default 30)\n"
            "  -h, --help         this text; `mika client <resource> --help` for one resource\n"
            "\n"
            "Exit status: 0 done; 1 the API refused or could not be reached (one line on\n"
            "stderr); 2 a usage error.\n"
            "\n"
            "resources and actions:\n");
    cli_actions_help(f, NULL, NULL);
}

/* ---- connection settings -------------------------------------------------- */

static int cli_copy(char *dst, size_t cap, const char *src, const char *what,
                    struct mk_errbuf *eb)
{
    size_t n = strlen(src);
    if (n >= cap) {
        return mk_fail(eb, MK_EINVAL, "%s: longer than %zu bytes", what, cap - 1);
    }
    memcpy(dst, src, n + 1);
    return MK_OK;
}

static const char *cli_getenv(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (char *const *e = envp; e && *e; e++) {
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') {
            return *e + n + 1;
        }
    }
    return NULL;
}

/* The key is the file's first line, without surrounding blanks. The error
 * names the file, never its content. */
static int cli_read_key(const char *path, char *key, size_t cap, struct mk_errbuf *eb)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        return mk_fail(eb, MK_EIO,
                       "no API key: %s: %s (give --key, --key-file or MIKA_API_KEY, or run"
                       " in the daemon's data_dir)",
                       path, strerror(errno));
    }
    char line[1024];
    bool got = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    int rc = MK_OK;
    if (!got) {
        rc = mk_fail(eb, MK_EINVAL, "%s: empty key file", path);
    } else {
        char *s = line + strspn(line, " \t");
        size_t n = strcspn(s, "\r\n");
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
            n--;
        }
        if (n == 0) {
            rc = mk_fail(eb, MK_EINVAL, "%s: empty key file", path);
        } else if (n >= cap) {
            rc = mk_fail(eb, MK_EINVAL, "%s: key longer than %zu bytes", path, cap - 1);
        } else {
            memcpy(key, s, n);
            key[n] = '\0';
        }
    }
    explicit_bzero(line, sizeof(line));
    return rc;
}

/* The environment minus the client's own MIKA_API_* variables, which are
 * not daemon config keys (config_load would refuse MIKA_API_URL). */
static int cli_config_env(char *const *envp, char **out, size_t cap)
{
    static const char *const own[] = {"MIKA_API_URL=", "MIKA_API_KEY=", "MIKA_API_CACERT=",
                                      "MIKA_API_CERT="};
    size_t n = 0;
    for (char *const *e = envp; e && *e; e++) {
        bool skip = false;
        for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
            skip = skip || strncmp(*e, own[i], strlen(own[i])) == 0;
        }
        if (!skip && strncmp(*e, "MIKA_", 5) == 0) {
            if (n + 1 >= cap) {
                return -1;
            }
            out[n++] = *e;
        }
    }
    out[n] = NULL;
    return 0;
}

static int cli_url_from_config(const struct mk_config *mc, char *url, size_t cap,
                               struct mk_errbuf *eb)
{
    const char *host = mc->api_bind;
    bool v6 = strchr(host, ':') != NULL;
    if (strcmp(host, "0.0.0.0") == 0) {
        host = "127.0.0.1";
    } else if (strcmp(host, "::") == 0) {
        host = "::1";
    }
    int n = snprintf(url, cap, v6 ? "https://[%s]:%u" : "https://%s:%u", host,
                     (unsigned)mc->api_port);
    if (n < 0 || (size_t)n >= cap) {
        return mk_fail(eb, MK_EINVAL, "api.bind: too long for a URL");
    }
    return MK_OK;
}

static int cli_path_in(char *dst, size_t cap, const char *dir, const char *file,
                       struct mk_errbuf *eb)
{
    int n = snprintf(dst, cap, "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= cap) {
        return mk_fail(eb, MK_EINVAL, "api.data_dir: path too long");
    }
    return MK_OK;
}

int cli_resolve(const struct cli_flags *fl, char *const *envp, bool need_key,
                struct cli_http_cfg *cfg, struct mk_errbuf *eb)
{
    memset(cfg, 0, sizeof(*cfg));
    const char *url = fl->url ? fl->url : cli_getenv(envp, "MIKA_API_URL");
    const char *key = fl->key;
    const char *cacert = fl->cacert ? fl->cacert : cli_getenv(envp, "MIKA_API_CACERT");
    if (!cacert) {
        cacert = cli_getenv(envp, "MIKA_API_CERT"); /* the name config.c leaves to the client */
    }
    int rc = MK_OK;
    if (url) {
        rc = cli_copy(cfg->url, sizeof(cfg->url), url, "--url", eb);
    }
    if (rc == MK_OK && key) {
        rc = cli_copy(cfg->key, sizeof(cfg->key), key, "--key", eb);
    } else if (rc == MK_OK && fl->key_file) {
        rc = cli_read_key(fl->key_file, cfg->key, sizeof(cfg->key), eb);
    } else if (rc == MK_OK && (key = cli_getenv(envp, "MIKA_API_KEY")) != NULL) {
        rc = cli_copy(cfg->key, sizeof(cfg->key), key, "MIKA_API_KEY", eb);
    }
    if (rc == MK_OK && cacert) {
        rc = cli_copy(cfg->cacert, sizeof(cfg->cacert), cacert, "--cacert", eb);
    }
    bool have_key = cfg->key[0] != '\0' || !need_key;
    if (rc != MK_OK || (url && have_key && cacert)) {
        goto out;
    }

    /* Something is missing: read the daemon's configuration for it. */
    struct mk_config *mc = malloc(sizeof(*mc));
    char **env = calloc(CLI_MAX_ENV, sizeof(*env));
    if (!mc || !env) {
        free(mc);
        free(env);
        return mk_fail(eb, MK_ENOMEM, "out of memory");
    }
    config_defaults(mc);
    if (cli_config_env(envp, env, CLI_MAX_ENV) != 0) {
        rc = mk_fail(eb, MK_ELIMIT, "more than %d MIKA_* variables", CLI_MAX_ENV);
    } else {
        rc = config_load(mc, fl->config, env, eb);
    }
    if (rc == MK_OK && !url) {
        rc = cli_url_from_config(mc, cfg->url, sizeof(cfg->url), eb);
    }
    if (rc == MK_OK && !have_key && mc->api_keys[0] != '\0') {
        /* config_load checked the list; the first key is as good as any. */
        const char *p = mc->api_keys + strspn(mc->api_keys, " \t");
        size_t n = strcspn(p, ", \t");
        if (n >= sizeof(cfg->key)) {
            rc = mk_fail(eb, MK_EINVAL, "api.keys: key too long");
        } else {
            memcpy(cfg->key, p, n);
            cfg->key[n] = '\0';
        }
    } else if (rc == MK_OK && !have_key) {
        char path[4096 + 16];
        rc = cli_path_in(path, sizeof(path), mc->api_data_dir, "api.key", eb);
        if (rc == MK_OK) {
            rc = cli_read_key(path, cfg->key, sizeof(cfg->key), eb);
        }
    }
    if (rc == MK_OK && !cacert && mc->api_cert[0] != '\0') {
        rc = cli_copy(cfg->cacert, sizeof(cfg->cacert), mc->api_cert, "api.tls_cert", eb);
    } else if (rc == MK_OK && !cacert) {
        char path[4096 + 16];
        rc = cli_path_in(path, sizeof(path), mc->api_data_dir, "api-cert.pem", eb);
        if (rc == MK_OK && access(path, R_OK) == 0) {
            rc = cli_copy(cfg->cacert, sizeof(cfg->cacert), path, "api.data_dir", eb);
        }
    }
    explicit_bzero(mc->api_keys, sizeof(mc->api_keys));
    free(mc);
    free(env);
out:
    if (rc == MK_OK) {
        size_t n = strlen(cfg->url);
        while (n > 0 && cfg->url[n - 1] == '/') {
            cfg->url[--n] = '\0';
        }
    } else {
        explicit_bzero(cfg->key, sizeof(cfg->key));
    }
    return rc;
}

/* ---- answers ------------------------------------------------------------- */

/* One line from an error answer: the API's message and code, or the start of
 * whatever else came back. */
static void cli_report_http_error(const struct cli_http_resp *r)
{
    json_error_t jerr;
    json_t *doc = json_loadb(r->body, r->len, 0, &jerr);
    json_t *e = json_object_get(doc, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *code = json_string_value(json_object_get(e, "code"));
    char clean[512];
    if (msg) {
        cli_out_scalar(json_object_get(e, "message"), clean, sizeof(clean));
        fprintf(stderr, "mika client: %s (%s, HTTP %ld)\n", clean, code ? code : "error",
                r->status);
    } else {
        size_t n = strcspn(r->body, "\r\n");
        json_t *s = json_stringn_nocheck(r->body, n < 200 ? n : 200);
        cli_out_scalar(s, clean, sizeof(clean));
        json_decref(s);
        fprintf(stderr, "mika client: HTTP %ld%s%s\n", r->status, clean[0] ? ": " : "", clean);
    }
    json_decref(doc);
}

static int cli_show(const struct cli_req *req, const struct cli_http_resp *r, bool as_json)
{
    if (r->status < 200 || r->status > 299) {
        cli_report_http_error(r);
        return CLI_EXIT_FAIL;
    }
    if (as_json || req->view == CLI_VIEW_TEXT) {
        fwrite(r->body, 1, r->len, stdout);
        if (r->len > 0 && r->body[r->len - 1] != '\n') {
            fputc('\n', stdout);
        }
        return CLI_EXIT_OK;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(r->body, r->len, JSON_DECODE_ANY, &jerr);
    if (!doc) {
        fprintf(stderr, "mika client: the answer is not JSON (%s at byte %d)\n", jerr.text,
                jerr.position);
        return CLI_EXIT_FAIL;
    }
    cli_out_auto(stdout, doc, req->cols);
    json_decref(doc);
    return CLI_EXIT_OK;
}

/* ---- main ---------------------------------------------------------------- */

struct cli_args {
    struct cli_flags fl;
    bool json;
    bool help;
    long timeout_s;
    char **rest; /* resource, action, their arguments */
    int nrest;
};

/* Takes the global options out of argv wherever they are (before a "--"). */
static int cli_parse_globals(int argc, char **argv, struct cli_args *a, struct mk_errbuf *eb)
{
    static const struct {
        const char *name;
        size_t offset;
    } valued[] = {
        {"url", offsetof(struct cli_flags, url)},
        {"key", offsetof(struct cli_flags, key)},
        {"key-file", offsetof(struct cli_flags, key_file)},
        {"cacert", offsetof(struct cli_flags, cacert)},
        {"config", offsetof(struct cli_flags, config)},
    };
    bool ended = false;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (ended || strncmp(s, "-", 1) != 0) {
            a->rest[a->nrest++] = argv[i];
            continue;
        }
        if (strcmp(s, "--") == 0) {
            ended = true;
            a->rest[a->nrest++] = argv[i];
            continue;
        }
        if (strcmp(s, "--json") == 0) {
            a->json = true;
            continue;
        }
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            a->help = true;
            continue;
        }
        const char *flag = s + 2;
        size_t flen = strcspn(flag, "=");
        const char *value = NULL;
        const char **slot = NULL;
        bool is_timeout = flen == 7 && strncmp(flag, "timeout", 7) == 0;
        for (size_t k = 0; k < sizeof(valued) / sizeof(valued[0]) && !slot; k++) {
            if (strlen(valued[k].name) == flen && strncmp(flag, valued[k].name, flen) == 0) {
                slot = (const char **)((char *)&a->fl + valued[k].offset);
            }
        }
        if (strncmp(s, "--", 2) != 0 || (!slot && !is_timeout)) {
            a->rest[a->nrest++] = argv[i]; /* an action's option */
            continue;
        }
        if (flag[flen] == '=') {
            value = flag + flen + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            return mk_fail(eb, MK_EINVAL, "--%.*s needs a value", (int)flen, flag);
        }
        if (is_timeout) {
            char *end;
            long t = strtol(value, &end, 10);
            if (*value == '\0' || *end != '\0' || t < 1 || t > 3600) {
                return mk_fail(eb, MK_EINVAL, "--timeout: want 1..3600 seconds");
            }
            a->timeout_s = t;
        } else {
            *slot = value;
        }
    }
    return MK_OK;
}

int cli_main(int argc, char **argv)
{
    struct cli_args a = {.json = false};
    struct mk_errbuf eb = {{0}};
    a.rest = calloc((size_t)argc + 1, sizeof(*a.rest));
    if (!a.rest) {
        fprintf(stderr, "mika client: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    int code = CLI_EXIT_USAGE;
    if (cli_parse_globals(argc, argv, &a, &eb) != MK_OK) {
        fprintf(stderr, "mika client: %s\n", eb.msg);
        goto out_args;
    }
    if (a.help || a.nrest == 0 || strcmp(a.rest[0], "help") == 0) {
        char **names = a.rest;
        int n = a.nrest;
        if (n > 0 && strcmp(names[0], "help") == 0) {
            names++;
            n--;
        }
        bool asked = a.help || a.nrest > 0;
        if (n == 0) {
            cli_usage(asked ? stdout : stderr);
            code = asked ? CLI_EXIT_OK : CLI_EXIT_USAGE;
        } else if (cli_actions_help(stdout, names[0], n > 1 ? names[1] : NULL) ||
                   cli_actions_help(stdout, names[0], NULL)) {
            code = CLI_EXIT_OK;
        } else {
            fprintf(stderr, "mika client: unknown resource \"%s\" (see mika client --help)\n",
                    names[0]);
        }
        goto out_args;
    }

    struct cli_req req;
    int rc = cli_actions_build(a.nrest, a.rest, &req, &eb);
    if (rc != MK_OK) {
        fprintf(stderr, "mika client: %s\n", eb.msg);
        code = rc == MK_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
        goto out_args;
    }
    struct cli_http_cfg cfg;
    code = CLI_EXIT_FAIL;
    if (cli_resolve(&a.fl, environ, req.auth, &cfg, &eb) != MK_OK) {
        fprintf(stderr, "mika client: %s\n", eb.msg);
        goto out_req;
    }
    cfg.timeout_s = a.timeout_s;
    if (!req.auth) {
        explicit_bzero(cfg.key, sizeof(cfg.key));
    }
    if (cli_http_global_init(&eb) != MK_OK) {
        fprintf(stderr, "mika client: %s\n", eb.msg);
        goto out_cfg;
    }
    struct cli_http_resp resp;
    if (cli_http_request(&cfg, req.method, req.path, req.ctype, req.body, req.body_len, &resp,
                         &eb) != MK_OK) {
        fprintf(stderr, "mika client: %s\n", eb.msg);
    } else {
        code = cli_show(&req, &resp, a.json);
        cli_http_resp_fini(&resp);
    }
    cli_http_global_fini();
out_cfg:
    explicit_bzero(&cfg, sizeof(cfg));
out_req:
    cli_req_fini(&req);
out_args:
    free(a.rest);
    if (fflush(stdout) != 0 && code == CLI_EXIT_OK) {
        code = CLI_EXIT_FAIL; /* a full disk or closed pipe must not look like success */
    }
    return code;
}
