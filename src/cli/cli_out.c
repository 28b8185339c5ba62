/* cli/cli_out.c: JSON answers as aligned text. See cli_out.h. */
#include "cli/cli_out.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Display width of UTF-8 text: one column per code point is right for the
 * names a tracker stores, and keeps the tables aligned without a locale. */
static size_t cli_out_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++) {
        if (((unsigned char)*s & 0xc0) != 0x80) {
            w++;
        }
    }
    return w;
}

static void cli_out_pad(FILE *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fputc(' ', f);
    }
}

/* Appends src[0..n) to buf at *len, replacing control bytes by '?' and
 * stopping (without splitting a UTF-8 sequence's start) before cap - 1. */
static void cli_out_append(char *buf, size_t cap, size_t *len, const char *src, size_t n)
{
    for (size_t i = 0; i < n && *len + 1 < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        buf[(*len)++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    buf[*len] = '\0';
}

static size_t cli_out_real(double d, char *buf, size_t cap)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) {
            break;
        }
    }
    return strlen(buf);
}

static bool cli_out_is_scalar(const json_t *v)
{
    return !json_is_object(v) && !json_is_array(v);
}

size_t cli_out_scalar(const json_t *v, char *buf, size_t cap)
{
    size_t len = 0;
    char num[64];
    if (cap == 0) {
        return 0;
    }
    buf[0] = '\0';
    if (!v || json_is_null(v)) {
        cli_out_append(buf, cap, &len, "-", 1);
    } else if (json_is_string(v)) {
        cli_out_append(buf, cap, &len, json_string_value(v), json_string_length(v));
    } else if (json_is_integer(v)) {
        int n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        cli_out_append(buf, cap, &len, num, (size_t)n);
    } else if (json_is_real(v)) {
        size_t n = cli_out_real(json_real_value(v), num, sizeof(num));
        cli_out_append(buf, cap, &len, num, n);
    } else if (json_is_boolean(v)) {
        const char *t = json_is_true(v) ? "true" : "false";
        cli_out_append(buf, cap, &len, t, strlen(t));
    } else {
        bool all_scalar = json_is_array(v);
        size_t i;
        const json_t *item;
        json_array_foreach(v, i, item) {
            all_scalar = all_scalar && cli_out_is_scalar(item);
        }
        if (all_scalar) {
            json_array_foreach(v, i, item) {
                if (i > 0) {
                    cli_out_append(buf, cap, &len, ", ", 2);
                }
                char sub[256];
                size_t n = cli_out_scalar(item, sub, sizeof(sub));
                cli_out_append(buf, cap, &len, sub, n);
            }
        } else {
            char *dump = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
            if (dump) {
                cli_out_append(buf, cap, &len, dump, strlen(dump));
                free(dump);
            }
        }
    }
    return len;
}

/* ---- objects ------------------------------------------------------------ */

static bool cli_out_is_table(const json_t *v)
{
    if (!json_is_array(v) || json_array_size(v) == 0) {
        return false;
    }
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item) {
        if (!json_is_object(item)) {
            return false;
        }
    }
    return true;
}

/* Longest "prefix.key" among the lines cli_out_lines() will print. */
static size_t cli_out_key_width(const json_t *obj, size_t prefix)
{
    size_t w = 0;
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        size_t kw = prefix + cli_out_width(k);
        if (json_is_object(v) && json_object_size(v) > 0) {
            kw = cli_out_key_width(v, kw + 1);
        } else if (cli_out_is_table(v)) {
            continue;
        }
        w = kw > w ? kw : w;
    }
    return w;
}

static void cli_out_lines(FILE *f, const json_t *obj, const char *prefix, size_t width)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        char name[512];
        char clean[256];
        size_t n = 0;
        cli_out_append(clean, sizeof(clean), &n, k, strlen(k));
        snprintf(name, sizeof(name), "%s%s%s", prefix, prefix[0] ? "." : "", clean);
        if (json_is_object(v) && json_object_size(v) > 0) {
            cli_out_lines(f, v, name, width);
            continue;
        }
        if (cli_out_is_table(v)) {
            continue;
        }
        char *val = malloc(json_is_string(v) ? json_string_length(v) + 1 : 4096);
        if (!val) {
            continue;
        }
        cli_out_scalar(v, val, json_is_string(v) ? json_string_length(v) + 1 : 4096);
        fprintf(f, "%s:", name);
        cli_out_pad(f, width - cli_out_width(name) + 1);
        fprintf(f, "%s\n", val);
        free(val);
    }
}

/* Tables nested anywhere in obj, after all the plain lines. */
static void cli_out_subtables(FILE *f, const json_t *obj, const char *prefix)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        char name[512];
        char clean[256];
        size_t n = 0;
        cli_out_append(clean, sizeof(clean), &n, k, strlen(k));
        snprintf(name, sizeof(name), "%s%s%s", prefix, prefix[0] ? "." : "", clean);
        if (json_is_object(v)) {
            cli_out_subtables(f, v, name);
        } else if (cli_out_is_table(v)) {
            fprintf(f, "%s:\n", name);
            cli_out_table(f, v, NULL, 2);
        }
    }
}

void cli_out_object(FILE *f, const json_t *obj)
{
    if (!json_is_object(obj)) {
        char buf[4096];
        cli_out_scalar(obj, buf, sizeof(buf));
        fprintf(f, "%s\n", buf);
        return;
    }
    cli_out_lines(f, obj, "", cli_out_key_width(obj, 0));
    cli_out_subtables(f, obj, "");
}

/* ---- tables ------------------------------------------------------------- */

static size_t cli_out_columns(const json_t *rows, const char *const *cols, const char **out)
{
    size_t n = 0;
    if (cols) {
        for (; cols[n] && n < CLI_OUT_MAX_COLS; n++) {
            out[n] = cols[n];
        }
        return n;
    }
    size_t i;
    const json_t *row;
    json_array_foreach(rows, i, row) {
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)row, k, v) {
            bool seen = false;
            for (size_t j = 0; j < n && !seen; j++) {
                seen = strcmp(out[j], k) == 0;
            }
            if (!seen && n < CLI_OUT_MAX_COLS) {
                out[n++] = k;
            }
        }
    }
    return n;
}

/* A cell's text, cut to CLI_OUT_MAX_CELL columns. */
static void cli_out_cell(const json_t *v, char *buf, size_t cap)
{
    cli_out_scalar(v, buf, cap);
    if (cli_out_width(buf) <= CLI_OUT_MAX_CELL) {
        return;
    }
    size_t cols = 0;
    size_t i = 0;
    for (; buf[i]; i++) {
        if (((unsigned char)buf[i] & 0xc0) != 0x80 && ++cols > CLI_OUT_MAX_CELL - 3) {
            break;
        }
    }
    snprintf(buf + i, cap - i, "...");
}

void cli_out_table(FILE *f, const json_t *rows, const char *const *cols, int indent)
{
    const char *names[CLI_OUT_MAX_COLS];
    size_t ncols = json_is_array(rows) ? cli_out_columns(rows, cols, names) : 0;
    size_t nrows = json_array_size(rows);
    if (nrows == 0 || ncols == 0) {
        cli_out_pad(f, (size_t)indent);
        fprintf(f, "(none)\n");
        return;
    }
    /* A cell is at most CLI_OUT_MAX_CELL code points of up to 4 bytes. */
    enum { CELL_CAP = CLI_OUT_MAX_CELL * 4 + 4 };
    size_t width[CLI_OUT_MAX_COLS];
    char cell[CELL_CAP];
    for (size_t c = 0; c < ncols; c++) {
        width[c] = cli_out_width(names[c]);
        for (size_t r = 0; r < nrows; r++) {
            cli_out_cell(json_object_get(json_array_get(rows, r), names[c]), cell, sizeof(cell));
            size_t w = cli_out_width(cell);
            width[c] = w > width[c] ? w : width[c];
        }
    }
    cli_out_pad(f, (size_t)indent);
    for (size_t c = 0; c < ncols; c++) {
        size_t n = 0;
        cli_out_append(cell, sizeof(cell), &n, names[c], strlen(names[c]));
        fprintf(f, "%s", cell);
        if (c + 1 < ncols) {
            cli_out_pad(f, width[c] - cli_out_width(cell) + 2);
        }
    }
    fputc('\n', f);
    for (size_t r = 0; r < nrows; r++) {
        cli_out_pad(f, (size_t)indent);
        for (size_t c = 0; c < ncols; c++) {
            cli_out_cell(json_object_get(json_array_get(rows, r), names[c]), cell, sizeof(cell));
            fprintf(f, "%s", cell);
            if (c + 1 < ncols) {
                cli_out_pad(f, width[c] - cli_out_width(cell) + 2);
            }
        }
        fputc('\n', f);
    }
}

void cli_out_auto(FILE *f, const json_t *v, const char *const *cols)
{
    if (json_is_array(v)) {
        cli_out_table(f, v, cols, 0);
        return;
    }
    if (!json_is_object(v)) {
        cli_out_object(f, v);
        return;
    }
    const char *k;
    const json_t *m;
    const char *list = NULL;
    size_t narrays = 0;
    bool counts_only = true;
    json_object_foreach((json_t *)v, k, m) {
        if (json_is_array(m)) {
            narrays++;
            if (json_array_size(m) == 0 || cli_out_is_table(m)) {
                list = k;
            }
        } else {
            counts_only = counts_only && json_is_number(m);
        }
    }
    /* A torrent's empty "warnings" must not turn the torrent into a page. */
    if (narrays != 1 || !list || !counts_only) {
        cli_out_object(f, v);
        return;
    }
    cli_out_table(f, json_object_get(v, list), cols, 0);
    json_t *rest = json_copy((json_t *)v);
    if (!rest) {
        return;
    }
    json_object_del(rest, list);
    if (json_object_size(rest) > 0) {
        fputc('\n', f);
        cli_out_object(f, rest);
    }
    json_decref(rest);
}
