/* cli/cli_actions.c: argv -> one API request for `mika client`. See
 * cli_actions.h.
 *
 * Sections: small helpers; parsing argv against an action of the table
 * (cli_table.c); option values by type; building requests (generic, and
 * the two actions whose route depends on the argument).
 */
#include "cli/cli_actions.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli_table.h"
#include "util/boolword.h"

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
        if (mk_boolword_parse(v, &b) != 0) {
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
int cli_build_user_get(const struct cli_action *a, const struct cli_parsed *p,
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
int cli_build_torrent_add(const struct cli_action *a, const struct cli_parsed *p,
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
